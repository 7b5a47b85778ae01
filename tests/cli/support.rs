//! The test kit, and the prelude of every topic module (`use crate::support::*;`).
//!
//! Every run of the real binary starts from a cleared environment in its own
//! temporary HOME, so the developer's machine never leaks into a test, and
//! every peer listens on a free loopback port: nothing here touches the
//! internet. The builders let a test say its situation on its first lines:
//!
//! ```text
//! let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
//! let env = given_expired_store(&withings.uri());
//! let out = env.run_fast(&["refresh", "--json"]);
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;
pub use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::{any, body_string_contains, method, path};
pub use wiremock::{Mock, MockBuilder, ResponseTemplate};
use wiremock::{MockServer, Request, Respond};

pub const BIN: &str = env!("CARGO_BIN_EXE_withings-token");

/// The Withings app every [`TestEnv::withings`] user has.
pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret-value";

/// The set an expired store holds ([`given_expired_store`]) ...
pub const OLD_ACCESS: &str = "old-access-000";
pub const OLD_REFRESH: &str = "old-refresh-abc";
/// ... and the set a fake Withings issues for it ([`withings_rotating`]).
pub const NEW_ACCESS: &str = "new-access-123";
pub const NEW_REFRESH: &str = "new-refresh-xyz";

// How soon a run gives up. The three paces differ on purpose:

/// Core tests (wiremock and sandbox): no pause between attempts, 300 ms per
/// request. The timeout tests pin "timed out after 300 ms", so the value is
/// part of what they expect.
pub const FAST: [&str; 4] = ["--retry-delay", "0s", "--timeout", "300ms"];
/// The fault matrix: exactly two attempts, because its expected request
/// counts assume them, and 500 ms per request, for slack: every cell runs
/// against a sandbox process that also answers for Railway.
pub const FAST_ONE_RETRY: [&str; 6] = ["--retries", "1", "--retry-delay", "0s", "--timeout", "500ms"];
/// The Railway tests: no pause between attempts, the default 30 s timeout
/// (Railway's own waits, such as `Retry-After`, still apply).
pub const NO_RETRY_DELAY: [&str; 2] = ["--retry-delay", "0s"];

// ---------------------------------------------------------------------------
// One user and one run

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
        let as_usual = self.std_cmd();
        let mut cmd = StdCommand::new(program);
        cmd.args(launcher)
            .args(args)
            .env_clear()
            .current_dir(as_usual.get_current_dir().expect("work dir"))
            .stdin(Stdio::null());
        for (k, v) in as_usual.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let mut cmd = Command::from_std(cmd);
        cmd.timeout(timeout);
        Run::of(&mut cmd)
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

// ---------------------------------------------------------------------------
// A fake Withings (wiremock)

/// A wiremock server on its own runtime, standing in for Withings (and in
/// the Railway tests for Railway too). Each mock's `expect` is checked by
/// [`Upstream::verify`], and again when the server drops.
pub struct Upstream {
    // Field order matters: the server drops before its runtime.
    server: MockServer,
    rt: tokio::runtime::Runtime,
}

impl Upstream {
    pub fn start() -> Upstream {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(MockServer::start());
        Upstream { server, rt }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn mount(&self, mock: Mock) {
        self.rt.block_on(mock.mount(&self.server));
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.rt
            .block_on(self.server.received_requests())
            .expect("request recording is on")
    }

    pub fn verify(&self) {
        self.rt.block_on(self.server.verify());
    }
}

/// A POST to Withings' token endpoint.
pub fn token_request() -> MockBuilder {
    Mock::given(method("POST")).and(path("/v2/oauth2"))
}

/// A POST to the token endpoint that sends `refresh_token`.
pub fn refresh_of(refresh_token: &str) -> MockBuilder {
    token_request().and(body_string_contains(format!("refresh_token={refresh_token}")))
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

/// Withings issuing `access` / `refresh`, valid for 3 h.
pub fn new_tokens(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(token_body(access, refresh, 10800))
}

/// Withings refusing the refresh token (its status 503 on HTTP 200).
pub fn refused_refresh() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": 503,
        "body": {},
        "error": "Invalid Params: invalid refresh_token",
    }))
}

/// A Withings that must not be called: any request fails `verify`.
pub fn silent_withings() -> Upstream {
    let withings = Upstream::start();
    withings.mount(
        Mock::given(any())
            .respond_with(new_tokens("a-never", "r-never"))
            .expect(0)
            .named("no request may reach Withings"),
    );
    withings
}

/// A Withings that answers every token request with `answer`; say how many
/// it must receive with [`Answering::times`].
pub fn withings_answering(answer: ResponseTemplate) -> Answering {
    Answering(token_request().respond_with(answer))
}

pub struct Answering(Mock);

impl Answering {
    /// Exactly `n` token requests, checked by `verify` and on drop.
    pub fn times(self, n: u64) -> Upstream {
        let withings = Upstream::start();
        withings.mount(self.0.expect(n));
        withings
    }
}

/// A Withings that rotates `refresh_token` into [`NEW_ACCESS`] /
/// [`NEW_REFRESH`], once.
pub fn withings_rotating(refresh_token: &str) -> Upstream {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(refresh_token)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    withings
}

/// A Withings stand-in that accepts any refresh token (as Withings does for a
/// rotated token during its grace period) and issues a new pair each time:
/// `mock-access-<n>` / `mock-refresh-<n>`, `n` counted in `issued` from 1.
pub struct Rotating {
    pub issued: Arc<AtomicU64>,
}

impl Respond for Rotating {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        new_tokens(&format!("mock-access-{n}"), &format!("mock-refresh-{n}"))
    }
}

/// A Withings that honours any refresh token ([`Rotating`]); also returns
/// how many sets it issued.
pub fn withings_always_rotating() -> (Upstream, Arc<AtomicU64>) {
    let withings = Upstream::start();
    let issued = Arc::new(AtomicU64::new(0));
    withings.mount(token_request().respond_with(Rotating { issued: issued.clone() }));
    (withings, issued)
}

/// `http://` and a loopback port where nothing listens.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

// ---------------------------------------------------------------------------
// A fake Railway (wiremock)

/// Railway's GraphQL endpoint, as a path on a fake's base URL.
pub const GRAPHQL: &str = "/graphql/v2";

/// A GraphQL POST for one operation (matched on the query text).
pub fn gql(op: &str) -> MockBuilder {
    Mock::given(method("POST"))
        .and(path(GRAPHQL))
        .and(body_string_contains(format!("{op}(")))
}

// ---------------------------------------------------------------------------
// The built-in sandbox

/// The built-in sandbox as a child process on a free loopback port.
pub struct SandboxProcess {
    child: Child,
    /// The settings it printed, but for its own store (tests keep theirs).
    pub env: HashMap<String, String>,
    /// The store its lines name (`WITHINGS_TOKEN_STORE`).
    pub own_store: PathBuf,
    addr: String,
}

/// What a user gets from `auth-url --json` and the consent page.
pub struct Consent {
    /// The `auth-url --json` report.
    pub auth: Value,
    /// The redirect URL the consent page sent the browser to (with its code).
    pub redirect: String,
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
            if line.starts_with("WITHINGS_TOKEN_STORE=") {
                break;
            }
        }
        let own_store = PathBuf::from(env.remove("WITHINGS_TOKEN_STORE").expect("the sandbox names its store"));
        let addr = env["WITHINGS_API_URL"].trim_start_matches("http://").to_owned();
        SandboxProcess {
            child,
            env,
            own_store,
            addr,
        }
    }

    /// Stops it as Ctrl-C would; its exit status (it has one, once stopped).
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let _ = StdCommand::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let stopped = wait_until(Duration::from_secs(10), || matches!(self.child.try_wait(), Ok(Some(_))));
        assert!(stopped, "the sandbox did not stop on SIGINT");
        self.child.wait().expect("wait")
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

    /// Waits (at most 10 s) until it has had `n` token requests since `before`.
    pub fn until_asked(&self, before: &Value, n: u64) {
        let asked = wait_until(Duration::from_secs(10), || {
            stat_delta(before, &self.stats(), "token_requests") >= n
        });
        assert!(asked, "the sandbox never got {n} token request(s)");
    }

    pub fn stats(&self) -> Value {
        let (status, body) = http(&self.addr, "GET", "/_sandbox/stats", None);
        assert_eq!(status, 200);
        serde_json::from_str(&body).expect("stats json")
    }

    /// Follows the consent page at `authorization_url` as the user's browser
    /// would and returns the redirect URL (with its code).
    pub fn approve(&self, authorization_url: &str) -> String {
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

    /// `auth-url --json` as `env`'s user, then the consent page.
    pub fn consent(&self, env: &TestEnv) -> Consent {
        let out = env.run(&["auth-url", "--json"]);
        assert_eq!(out.code, 0, "{out:?}");
        let auth = out.json();
        let redirect = self.approve(auth["authorization_url"].as_str().expect("authorization_url"));
        Consent { auth, redirect }
    }

    /// Authorises `env` (auth-url, consent, `exchange --no-railway`), so its
    /// store holds a refresh token this sandbox issued and still honours.
    /// Returns the redirect URL that was exchanged.
    pub fn authorise(&self, env: &TestEnv) -> String {
        let Consent { redirect, .. } = self.consent(env);
        let out = env.run(&["exchange", &redirect, "--no-railway"]);
        assert_eq!(out.code, 0, "{out:?}");
        redirect
    }
}

impl Drop for SandboxProcess {
    /// SIGTERM first, so that it removes its store directory; SIGKILL if
    /// it has not stopped within a second.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = StdCommand::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            wait_until(Duration::from_secs(1), || !matches!(self.child.try_wait(), Ok(None)));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sandbox and a user pointed at it, with nothing stored yet.
pub fn given_sandbox() -> (SandboxProcess, TestEnv) {
    let sandbox = SandboxProcess::start();
    let mut env = TestEnv::new();
    sandbox.configure(&mut env);
    (sandbox, env)
}

/// A sandbox and a user pointed at it whose store holds a live refresh token.
pub fn given_authorised_sandbox() -> (SandboxProcess, TestEnv) {
    let (sandbox, env) = given_sandbox();
    sandbox.authorise(&env);
    (sandbox, env)
}

/// One counter of the sandbox's `stats`.
pub fn stat(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("stats has no {key}: {stats}"))
}

/// How much a sandbox counter grew between two `stats()` readings.
pub fn stat_delta(before: &Value, after: &Value, key: &str) -> u64 {
    stat(after, key) - stat(before, key)
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

/// A tiny HTTP/1.1 client for the sandbox's control endpoints: (status, body).
fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let (status, _, body) = split_response(&raw_request(addr, method, path, body));
    (status, body)
}

/// Same, for the head of the answer: (status, head).
fn http_head(addr: &str, method: &str, path: &str) -> (u16, String) {
    let (status, head, _) = split_response(&raw_request(addr, method, path, None));
    (status, head)
}

fn split_response(response: &str) -> (u16, String, String) {
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    (status, head.to_owned(), body.to_owned())
}

// ---------------------------------------------------------------------------
// Small things

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The permission bits of `path` (`0o600`).
pub fn file_mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
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

// ---------------------------------------------------------------------------
// `serve` as a child process

/// The credentials [`TestEnv::serve_credentials`] gives a user.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const READER_TOKEN: &str = "test-reader-token-fedcba9876543210";

impl TestEnv {
    /// `ADMIN_API_TOKEN` and `WITHINGS_TOKEN_READER_TOKEN`.
    pub fn serve_credentials(&mut self) -> &mut Self {
        self.set("ADMIN_API_TOKEN", ADMIN_TOKEN)
            .set("WITHINGS_TOKEN_READER_TOKEN", READER_TOKEN)
    }

    /// `serve --listen 127.0.0.1:0 ARGS`, once it listens.
    pub fn serve(&self, args: &[&str]) -> ServeProcess {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        self.serve_with(&all)
    }

    /// `serve ARGS` (no `--listen` added), once it listens.
    pub fn serve_with(&self, args: &[&str]) -> ServeProcess {
        ServeProcess::start(self.std_cmd().arg("serve").args(args))
    }

    /// `serve --listen 127.0.0.1:0 ARGS` started by `sh` after `prelude`
    /// (e.g. `ulimit -S -n 128`), once it listens: for limits a test
    /// imposes on the server.
    pub fn serve_under_sh(&self, prelude: &str, args: &[&str]) -> ServeProcess {
        let as_usual = self.std_cmd();
        let mut cmd = StdCommand::new("/bin/sh");
        cmd.args(["-c", &format!(r#"{prelude} && exec "$0" "$@""#), BIN])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .current_dir(as_usual.get_current_dir().expect("work dir"));
        for (k, v) in as_usual.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        ServeProcess::start(&mut cmd)
    }
}

/// A running `serve`: its address (from its `listening on` line) and
/// everything it wrote on stderr so far.
pub struct ServeProcess {
    child: Child,
    pub addr: String,
    log: Arc<std::sync::Mutex<String>>,
}

impl ServeProcess {
    fn start(cmd: &mut StdCommand) -> ServeProcess {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let (found, listening) = std::sync::mpsc::channel();
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Kept before the address is announced, so the log has the line.
                {
                    let mut log = kept.lock().unwrap_or_else(|p| p.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    let addr: String = rest.chars().take_while(|c| *c != '"' && !c.is_whitespace()).collect();
                    let _ = found.send(addr.replace("0.0.0.0", "127.0.0.1"));
                }
            }
        });
        let addr = match listening.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("serve never said it listens ({status:?}):\n{}", log.lock().unwrap());
            }
        };
        ServeProcess { child, addr, log }
    }

    /// Everything on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        request(&self.addr, "GET", path, headers, None)
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
        request(&self.addr, "POST", path, headers, body)
    }

    /// A GET with `X-Admin-Token: ADMIN_TOKEN`.
    pub fn admin_get(&self, path: &str) -> Answer {
        self.get(path, &[("X-Admin-Token", ADMIN_TOKEN)])
    }

    /// A POST with `X-Admin-Token: ADMIN_TOKEN` and a JSON body, if any.
    pub fn admin_post(&self, path: &str, body: Option<&str>) -> Answer {
        let headers = [("X-Admin-Token", ADMIN_TOKEN), ("Content-Type", "application/json")];
        self.post(path, &headers, body)
    }

    /// Sends a signal with bash's builtin `kill` (`-TERM`, `-INT`).
    pub fn signal(&self, signal: &str) {
        let status = StdCommand::new("bash")
            .args(["-c", &format!("kill {signal} {}", self.child.id())])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits up to `deadline` for the process to end; its status, if it did.
    pub fn wait(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP answer, read to its end.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// The `code` of the JSON error object.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// A tiny HTTP/1.1 client (no dependency): one request per connection.
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect serve");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let body = body.unwrap_or("");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(format!("{head}{body}").as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// A real Redis (Debian's `redis-server`, installed by `bash .ci/test`)

/// Why a Redis test fails where `redis-server` is missing: it fails, never
/// passes by skipping, and says how to get one.
pub const REDIS_SERVER_MISSING: &str = "redis-server is not installed: `bash .ci/test` installs it on Debian with root or sudo; else `sudo apt-get install redis-server` (Debian, Ubuntu) or `brew install redis` (macOS)";

/// The key a Redis store of [`CLIENT_ID`]'s app uses by default.
pub const REDIS_KEY: &str = "withings-token:test-client-id:tokens";

/// A `redis-server` of the test's own, on a free loopback port, in a
/// temporary directory, persisting nothing; killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// With extra `redis-server` arguments, e.g. `["--requirepass", "pw"]`.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().expect("redis dir");
        let port = free_port();
        let child = StdCommand::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(REDIS_SERVER_MISSING);
        let server = RedisServer { child, port, _dir: dir };
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "redis-server did not start on port {port}");
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops (`STOP`) or resumes (`CONT`) the server: a Redis that stops
    /// answering without closing its connections.
    pub fn signal(&self, name: &str) {
        let status = StdCommand::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} redis-server");
    }

    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis")
    }

    /// One command, for a test's own checks; `None` for a nil reply.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let value: redis::Value = cmd.query(&mut self.connection()).expect("redis command");
        match value {
            redis::Value::Nil => None,
            redis::Value::Int(n) => Some(n.to_string()),
            redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            redis::Value::SimpleString(s) => Some(s),
            redis::Value::Okay => Some("OK".into()),
            other => Some(format!("{other:?}")),
        }
    }

    /// The stored set at [`REDIS_KEY`], as JSON.
    pub fn store_json(&self) -> Value {
        let text = self.command(&["GET", REDIS_KEY]).expect("the Redis store holds a set");
        serde_json::from_str(&text).expect("the Redis store parses")
    }

    pub fn write_store(&self, store: &Value) {
        self.command(&["SET", REDIS_KEY, &store.to_string()]);
    }

    /// Moves the stored set's expiry a minute into the past.
    pub fn make_store_due(&self) {
        let mut store = self.store_json();
        store["tokens"]["expires_at"] = json!(rfc3339(chrono::Utc::now() - chrono::Duration::seconds(60)));
        self.write_store(&store);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl TestEnv {
    /// Keeps the token set in `redis` (the default key of [`CLIENT_ID`]).
    pub fn on_redis(&mut self, redis: &RedisServer) -> &mut Self {
        self.set("WITHINGS_TOKEN_STORE", redis.url())
    }
}

/// `hosts` users, each with its own HOME (as on separate machines), all
/// pointed at one sandbox and one Redis store, authorised once by the first.
pub fn given_fleet(hosts: usize) -> (SandboxProcess, RedisServer, Vec<TestEnv>) {
    let sandbox = SandboxProcess::start();
    let redis = RedisServer::start();
    let envs: Vec<TestEnv> = (0..hosts)
        .map(|_| {
            let mut env = TestEnv::new();
            sandbox.configure(&mut env);
            env.on_redis(&redis).set("WITHINGS_TOKEN_STORE_KEY", REDIS_KEY);
            env
        })
        .collect();
    sandbox.authorise(&envs[0]);
    (sandbox, redis, envs)
}

/// The JSON report a finished child printed on stdout.
pub fn report_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Every child exited 0 (else the first failure's stderr).
pub fn assert_all_succeeded(outputs: &[std::process::Output]) {
    for (i, output) in outputs.iter().enumerate() {
        assert!(
            output.status.success(),
            "process {i} exited {:?}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Starts `args` once per env given, all at once (each its own process),
/// and waits for all; returns the outputs and the wall time of the batch.
pub fn run_all_at_once<'a>(
    envs: impl Iterator<Item = &'a TestEnv>,
    args: &[&str],
) -> (Vec<std::process::Output>, Duration) {
    let started = Instant::now();
    let children: Vec<Child> = envs.map(|env| env.spawn(args)).collect();
    let outputs = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    (outputs, started.elapsed())
}

impl TestEnv {
    /// `args` as a child process, stdout and stderr captured (for signals
    /// and waits while it runs).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.std_cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn withings-token")
    }
}

/// Waits (at most 10 s) until `withings` has received one request.
pub fn until_asked(withings: &Upstream) {
    assert!(
        wait_until(Duration::from_secs(10), || withings.requests().len() == 1),
        "the run asked Withings"
    );
}

/// Runs `args` on `env` and, once `withings` (which must delay its answer)
/// has the request, does `meanwhile`; returns the finished run.
pub fn while_withings_answers(
    env: &TestEnv,
    args: &[&str],
    withings: &Upstream,
    meanwhile: impl FnOnce(),
) -> std::process::Output {
    let child = env.spawn(args);
    until_asked(withings);
    meanwhile();
    child.wait_with_output().expect("wait")
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    let id = StdCommand::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

/// Runs `n` copies of `work` at once (released together); their results in order.
pub fn concurrently<T: Send>(n: usize, work: impl Fn() -> T + Sync) -> Vec<T> {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    work()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

/// How many of `reports` have each `outcome`.
pub fn outcome_counts(reports: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for report in reports {
        *counts
            .entry(report["outcome"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counts
}
