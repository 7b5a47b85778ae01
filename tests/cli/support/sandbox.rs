//! The built-in sandbox (`withings-token sandbox`) as a child process: a
//! Withings and Railway stand-in with consent pages, faults on demand and
//! counters of what it was asked.

use super::*;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::Duration;

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

    /// Plays both people revoking the app in Withings' settings: every
    /// refresh token issued so far is refused from now on.
    pub fn revoke(&self) {
        let (status, _) = http(&self.addr, "POST", "/_sandbox/revoke", None);
        assert_eq!(status, 204, "revoke not accepted");
    }

    /// A Withings data call as a consumer makes it: `POST path` with the
    /// form `form` and, when given, `Authorization: Bearer <access>`.
    /// Withings answers HTTP 200 whatever happened: the JSON body.
    pub fn data_call(&self, path: &str, access: Option<&str>, form: &str) -> Value {
        let mut head = String::from("Content-Type: application/x-www-form-urlencoded\r\n");
        if let Some(access) = access {
            head.push_str(&format!("Authorization: Bearer {access}\r\n"));
        }
        let (status, _, body) = split_response(&raw_request_with(&self.addr, "POST", path, &head, Some(form)));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
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
    raw_request_with(addr, method, path, "Content-Type: application/json\r\n", body)
}

/// `head_lines`: extra header lines, each ending in CRLF.
fn raw_request_with(addr: &str, method: &str, path: &str, head_lines: &str, body: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect sandbox");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{head_lines}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
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

/// The body of the sandbox's answer to `getmeas` with
/// `meastype=1&startdate=1796191200` for its first person.
pub fn first_persons_weights_body() -> Value {
    json!({
        "updatetime": 1_796_277_660, "timezone": "Europe/Paris", "more": 0, "offset": 0,
        "measuregrps": [
            {"grpid": 314159262, "attrib": 0, "date": 1_796_277_600, "created": 1_796_277_660,
             "modified": 1_796_277_660, "category": 1, "deviceid": "sbx-scale-31415926",
             "hash_deviceid": "sbx-scale-31415926",
             "measures": [{"value": 72100, "type": 1, "unit": -3, "algo": 0, "fm": 1}],
             "modelid": 5, "model": "Body+", "comment": null},
            {"grpid": 314159261, "attrib": 0, "date": 1_796_191_200, "created": 1_796_191_260,
             "modified": 1_796_191_260, "category": 1, "deviceid": "sbx-scale-31415926",
             "hash_deviceid": "sbx-scale-31415926",
             "measures": [{"value": 72300, "type": 1, "unit": -3, "algo": 0, "fm": 1}],
             "modelid": 5, "model": "Body+", "comment": null},
        ],
    })
}
