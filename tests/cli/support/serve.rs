//! `serve` as a child process ([`ServeProcess`]), a tiny HTTP client for it
//! ([`request`], [`Answer`]), and the users the serve tests start from.

use super::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

    /// `serve --listen 127.0.0.1:0 ARGS`, once it listens, its stderr a pipe
    /// that is read up to the `listening on` line and never again: a log
    /// reader that stalled (its [`ServeProcess::log`] stays that far).
    pub fn serve_with_stalled_log(&self, args: &[&str]) -> ServeProcess {
        let mut cmd = self.std_cmd();
        let mut child = cmd
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut log = String::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("serve never said it listens:\n{log}");
            }
            log.push_str(&line);
            if let Some((_, rest)) = line.split_once("listening on http://") {
                break rest.chars().take_while(|c| *c != '"' && !c.is_whitespace()).collect();
            }
        };
        ServeProcess {
            child,
            addr,
            log: Arc::new(std::sync::Mutex::new(log)),
            _unread: Some(stderr),
        }
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
    /// The stderr pipe of [`TestEnv::serve_with_stalled_log`], held open, unread.
    _unread: Option<BufReader<std::process::ChildStderr>>,
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
        ServeProcess {
            child,
            addr,
            log,
            _unread: None,
        }
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

/// A `serve` whose store holds a set with `expires_in_secs` left, its
/// Withings `withings`, and the loop idle for the test's length.
pub fn given_server(withings: &Upstream, expires_in_secs: i64) -> (TestEnv, ServeProcess) {
    let mut env = given_store_expiring_in(expires_in_secs);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--check-interval", "1h"]);
    (env, server)
}

/// A user on another machine: no store, no Withings credentials, only the
/// server (by WITHINGS_TOKEN_SERVER) and `token` as `variable`.
pub fn given_server_reader(server: &ServeProcess, variable: &str, token: &str) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_SERVER", format!("http://{}", server.addr))
        .set(variable, token);
    env
}

/// A user with a fresh set (3 h left), both serve credentials and a
/// Withings at `withings_url`.
pub fn given_fresh_server_user(withings_url: &str) -> TestEnv {
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(withings_url).serve_credentials();
    env
}

pub fn broker(server: &ServeProcess) -> Answer {
    server.get(
        "/v1/access-token",
        &[("Authorization", &format!("Bearer {READER_TOKEN}"))],
    )
}

/// How many lines of `log` contain `text`.
pub fn lines_with(log: &str, text: &str) -> usize {
    log.lines().filter(|line| line.contains(text)).count()
}
