//! `login`: the real binary against the built-in sandbox, with the test
//! playing the browser. It reads the URL the child prints on stderr,
//! follows the sandbox's consent page, and brings the redirect back to the
//! child's loopback listener. Loopback only.

use crate::support::*;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

// ---------------------------------------------------------------------------
// helpers

/// A sandbox and a user whose registered callback is a loopback URL on a
/// free port: the one `login` listens on.
fn given_login_sandbox() -> (SandboxProcess, TestEnv, u16) {
    let (sandbox, mut env) = given_sandbox();
    let port = free_port();
    env.set("WITHINGS_REDIRECT_URI", format!("http://127.0.0.1:{port}/callback"));
    (sandbox, env, port)
}

/// A `login` running as a child, its stderr read line by line aside.
struct LoginProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl LoginProcess {
    fn start(env: &TestEnv, args: &[&str]) -> LoginProcess {
        let mut child = env
            .std_cmd()
            .arg("login")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start login");
        let pipe = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (sender, lines) = mpsc::channel();
        let kept = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                kept.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = sender.send(line);
            }
        });
        LoginProcess {
            child,
            lines,
            stderr,
            reader: Some(reader),
        }
    }

    /// The authorization URL the child printed; it listens by then.
    fn authorization_url(&self) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.trim_start().starts_with("http") && line.contains("authorize2") => {
                    return line.trim().to_owned();
                }
                Ok(_) => continue,
                Err(_) => panic!("login printed no URL:\n{}", self.stderr.lock().unwrap()),
            }
        }
    }

    /// Waits for the exit (at most 30 s) and collects what was written.
    fn finish(mut self) -> Run {
        let ended = wait_until(Duration::from_secs(30), || {
            self.child.try_wait().expect("try_wait").is_some()
        });
        assert!(ended, "login did not end:\n{}", self.stderr.lock().unwrap());
        let status = self.child.wait().expect("wait");
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .expect("utf-8 stdout");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        let stderr = self.stderr.lock().unwrap().clone();
        Run {
            code: status.code().expect("exited normally"),
            stdout,
            stderr,
        }
    }
}

impl Drop for LoginProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET of `url` on loopback, as the browser sends it.
fn browse(url: &str) -> Answer {
    let url = url::Url::parse(url).expect("url");
    let addr = format!("{}:{}", url.host_str().expect("host"), url.port().expect("port"));
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    request(&addr, "GET", &path, &[], None)
}

fn query_value(url: &str, key: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {key} in {url}"))
}

/// The `--json` error object of a failed run: (message, action).
fn json_error(run: &Run, exit: i32, code: &str) -> (String, String) {
    assert_eq!(run.code, exit, "{run:?}");
    let error = &run.json()["error"];
    assert_eq!(error["code"], code, "{run:?}");
    let message = error["message"].as_str().expect("message").to_owned();
    assert!(run.stderr.contains(&format!("error: {message} [{code}]")), "{run:?}");
    (message, error["action"].as_str().expect("action").to_owned())
}

// ---------------------------------------------------------------------------
// the flow

#[test]
fn login_catches_the_redirect_on_loopback_stores_the_set_and_pushes_the_copies() {
    let (sandbox, env, port) = given_login_sandbox();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let login = LoginProcess::start(&env, &["--no-browser", "--json"]);

    let url = login.authorization_url();
    assert_eq!(query_value(&url, "redirect_uri"), callback);
    assert_eq!(query_value(&url, "response_type"), "code");
    assert_eq!(
        env.store_json()["pending_auth"]["state"],
        query_value(&url, "state"),
        "the state is kept in the store as `auth-url` keeps it"
    );
    // A browser asks for more than the callback: a 404, and the wait goes on.
    let favicon = browse(&format!("http://127.0.0.1:{port}/favicon.ico"));
    assert_eq!(favicon.status, 404, "{favicon:?}");
    let redirect = sandbox.approve(&url);
    assert!(redirect.starts_with(&format!("{callback}?code=")), "{redirect}");
    let page = browse(&redirect);
    let out = login.finish();

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["outcome"], "exchanged");
    assert_eq!(report["userid"], "31415926");
    assert_eq!(report["railway"], "updated", "Railway gets the set as after `exchange`");
    let store = env.store_json();
    let access = store["tokens"]["access_token"].as_str().unwrap().to_owned();
    let refresh = store["tokens"]["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("sbx_refresh_"), "{store}");
    assert_eq!(
        report["refresh_token"],
        format!("token_*****{}", &refresh[refresh.len() - 3..])
    );
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.body.contains("Logged in"), "{}", page.body);
    let code = query_value(&redirect, "code");
    for secret in [&access, &refresh, &code, "sandbox-client-secret"] {
        assert!(!page.body.contains(secret), "the page shows {secret}");
        assert!(!out.stderr.contains(secret), "stderr shows {secret}");
    }
    let stats = sandbox.stats();
    assert_eq!(stat(&stats, "token_requests"), 1);
    assert_eq!(stat(&stats, "tokens_issued"), 1);
    assert_eq!(stat(&stats, "railway_upserts"), 1);
    // The port is free again.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the callback port is released");
}

#[test]
fn without_a_loopback_redirect_uri_login_uses_the_default_callback_on_the_given_port() {
    let (sandbox, mut env) = given_sandbox();
    env.set("WITHINGS_REDIRECT_URI", "https://example.com/callback");
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let login = LoginProcess::start(&env, &["--no-browser", "--no-railway", "--port", &port.to_string()]);

    let url = login.authorization_url();
    assert_eq!(query_value(&url, "redirect_uri"), callback);
    let page = browse(&sandbox.approve(&url));
    let out = login.finish();

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        out.stderr.contains(&format!(
            "note: WITHINGS_REDIRECT_URI (https://example.com/callback) is not a loopback URL, so `login` uses {callback}"
        )),
        "{out:?}"
    );
    assert!(out.stdout.contains("exchanged"), "a table report: {out:?}");
    assert!(env.stored_refresh_token().starts_with("sbx_refresh_"));
    assert_eq!(stat(&sandbox.stats(), "railway_upserts"), 0, "--no-railway");
}

// ---------------------------------------------------------------------------
// refusals

/// `url` without its `key=value` parameter.
fn without_param(url: &str, key: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("url");
    let kept: Vec<(String, String)> = parsed.query_pairs().into_owned().filter(|(k, _)| k != key).collect();
    parsed.query_pairs_mut().clear().extend_pairs(kept);
    parsed.to_string()
}

/// The page a request that is not this login's redirect gets.
fn assert_not_this_login(page: &Answer) {
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.body.contains("Not this login"), "{}", page.body);
}

/// The login ends well after all: exit 0, one exchange, a set stored.
fn assert_logged_in(sandbox: &SandboxProcess, env: &TestEnv, page: &Answer, out: &Run) {
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(stat(&sandbox.stats(), "token_requests"), 1);
    assert!(env.stored_refresh_token().starts_with("sbx_refresh_"));
}

#[test]
fn a_foreign_state_keeps_login_waiting_and_its_own_redirect_still_logs_in() {
    let (sandbox, env, _port) = given_login_sandbox();
    let login = LoginProcess::start(&env, &["--no-browser", "--json"]);
    let url = login.authorization_url();
    let redirect = sandbox.approve(&url);
    let state = query_value(&url, "state");
    let foreign = redirect.replace(&format!("state={state}"), "state=someone-elses-state");
    assert_ne!(foreign, redirect);
    let before = env.store_bytes();

    for other in [foreign, without_param(&redirect, "state")] {
        assert_not_this_login(&browse(&other));
    }
    assert_eq!(stat(&sandbox.stats(), "token_requests"), 0, "nothing was sent");
    assert_eq!(env.store_bytes(), before, "the store is as `auth-url` left it");
    let page = browse(&redirect);
    let out = login.finish();

    assert_logged_in(&sandbox, &env, &page, &out);
    assert_eq!(out.json()["outcome"], "exchanged");
    assert_eq!(
        out.stderr
            .matches("warning: a request to the callback without this login's state was refused")
            .count(),
        2,
        "{out:?}"
    );
}

#[test]
fn a_foreign_state_on_the_error_path_keeps_login_waiting() {
    let (sandbox, env, port) = given_login_sandbox();
    let login = LoginProcess::start(&env, &["--no-browser"]);
    let url = login.authorization_url();

    for forged in ["error=access_denied", "error=x&state=not-this-one"] {
        assert_not_this_login(&browse(&format!("http://127.0.0.1:{port}/callback?{forged}")));
    }
    let page = browse(&sandbox.approve(&url));
    let out = login.finish();

    assert_logged_in(&sandbox, &env, &page, &out);
    assert!(!out.stderr.contains("declined"), "{out:?}");
}

/// A GET of `path` on the listener at 127.0.0.1:`port`, naming `host` in
/// its `Host` header, as a page of a rebound DNS name would send it.
fn get_naming_host(port: u16, path: &str, host: &str) -> (u16, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[test]
fn a_request_naming_another_host_is_refused_and_login_keeps_waiting() {
    let (sandbox, env, port) = given_login_sandbox();
    let login = LoginProcess::start(&env, &["--no-browser"]);
    let url = login.authorization_url();
    let redirect = sandbox.approve(&url);
    let path = redirect.trim_start_matches(&format!("http://127.0.0.1:{port}"));

    for host in [
        format!("rebound.example:{port}"),
        "127.0.0.1:1".to_owned(),
        String::new(),
    ] {
        let (status, response) = get_naming_host(port, path, &host);
        assert_eq!(status, 421, "Host {host:?}: {response}");
        assert!(response.contains("Wrong address"), "{response}");
    }
    assert_eq!(stat(&sandbox.stats(), "token_requests"), 0, "nothing was sent");
    let page = browse(&redirect);
    let out = login.finish();

    assert_logged_in(&sandbox, &env, &page, &out);
    assert!(
        out.stderr
            .contains("a request to the login listener naming another host (rebound.example:"),
        "{out:?}"
    );
}

#[test]
fn a_state_replaced_while_login_waits_is_invalid_state_naming_login() {
    let (sandbox, env, _port) = given_login_sandbox();
    let login = LoginProcess::start(&env, &["--no-browser", "--json"]);
    let url = login.authorization_url();
    assert_eq!(
        env.run(&["auth-url"]).code,
        0,
        "another consent replaces the pending state"
    );

    let page = browse(&sandbox.approve(&url));
    let out = login.finish();

    let (message, action) = json_error(&out, 4, "INVALID_STATE");
    assert!(message.contains("no longer holds this login's state"), "{message}");
    assert!(message.contains("nothing was sent"), "{message}");
    assert!(action.starts_with("run `withings-token login` again"), "{action}");
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.body.contains("INVALID_STATE"), "{}", page.body);
    assert_eq!(stat(&sandbox.stats(), "token_requests"), 0);
    assert!(env.store_json()["tokens"].is_null());
}

#[test]
fn a_declined_consent_is_exit_3_and_says_so_in_the_terminal_and_the_browser() {
    let (sandbox, env, port) = given_login_sandbox();
    let login = LoginProcess::start(&env, &["--no-browser"]);
    let url = login.authorization_url();
    let state = query_value(&url, "state");

    let page = browse(&format!(
        "http://127.0.0.1:{port}/callback?error=access_denied&state={state}"
    ));
    let out = login.finish();

    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(
            "error: the consent was declined in the browser (Withings answered error=access_denied); nothing was sent [CONFIGURATION_ERROR]\n  next: run `withings-token login` again and approve the request"
        ),
        "{out:?}"
    );
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.body.contains("declined"), "{}", page.body);
    assert_eq!(stat(&sandbox.stats(), "token_requests"), 0);
}

#[test]
fn no_callback_within_wait_is_exit_5_login_timeout_and_frees_the_port() {
    let (sandbox, env, port) = given_login_sandbox();

    let out = env.run(&["login", "--no-browser", "--wait", "1s"]);

    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");
    let expected = format!(
        "error: no browser came back to http://127.0.0.1:{port}/callback within 1 s; nothing was sent to Withings [LOGIN_TIMEOUT]\n  next: run `withings-token login` again and approve in the browser within `--wait` (or raise it)"
    );
    assert!(out.stderr.contains(&expected), "{out:?}");
    assert!(out.stderr.contains("`withings-token auth-url`, then"), "{out:?}");
    assert_eq!(stat(&sandbox.stats(), "token_requests"), 0);
    assert!(env.store_json()["tokens"].is_null());
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the callback port is released");
}

#[test]
fn a_port_in_use_is_exit_3_naming_the_port_and_nothing_is_stored() {
    let (sandbox, env, port) = given_login_sandbox();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");

    let out = env.run(&["login", "--no-browser", "--json"]);

    let (message, action) = json_error(&out, 3, "CONFIGURATION_ERROR");
    assert_eq!(
        message,
        format!("port {port} is already in use on 127.0.0.1, so `login` cannot listen there for the callback")
    );
    assert!(action.contains("`--port`"), "{action}");
    assert!(!out.stderr.contains("authorize2"), "no URL is offered: {out:?}");
    assert!(env.store_bytes().is_empty(), "no state was stored");
    assert_eq!(stat(&sandbox.stats(), "token_requests"), 0);
}

#[test]
fn a_port_flag_that_moves_the_registered_loopback_callback_is_exit_3() {
    let (_sandbox, env, port) = given_login_sandbox();
    let other = if port == 65535 { port - 1 } else { port + 1 };

    let out = env.run(&["login", "--no-browser", "--port", &other.to_string()]);

    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "error: --port {other} differs from the port of WITHINGS_REDIRECT_URI (http://127.0.0.1:{port}/callback)"
        )),
        "{out:?}"
    );
    assert!(env.store_bytes().is_empty());
}

#[test]
fn login_is_refused_with_server() {
    let (_sandbox, env, _port) = given_login_sandbox();

    let out = env.run(&["login", "--server", "http://127.0.0.1:9", "--json"]);

    let (message, action) = json_error(&out, 3, "CONFIGURATION_ERROR");
    assert!(message.contains("not available with --server"), "{message}");
    assert!(action.contains("`withings-token auth-url`"), "{action}");
}

// ---------------------------------------------------------------------------
// the browser

/// A stand-in `xdg-open` that writes the URL it was given to `opened`.
fn fake_opener(env: &TestEnv) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = env.home().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("xdg-open");
    let opened = env.home().join("opened");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    opened
}

#[test]
fn the_browser_is_opened_only_in_a_graphical_session() {
    let (_sandbox, mut env, _port) = given_login_sandbox();
    let opened = fake_opener(&env);
    let path = format!("{}:/usr/bin:/bin", env.home().join("bin").display());
    env.set("PATH", path);

    // No DISPLAY (a cleared environment): the URL is only printed.
    let out = env.run(&["login", "--wait", "1s"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("note: no browser opened"), "{out:?}");
    assert!(!opened.exists(), "xdg-open ran without a display");

    env.set("DISPLAY", ":0");
    let out = env.run(&["login", "--wait", "1s"]);
    assert_eq!(out.code, 5, "{out:?}");
    let printed = out
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| l.contains("authorize2"))
        .expect("the URL is printed too")
        .to_owned();
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&opened)
            .is_ok_and(|u| u == printed)),
        "xdg-open was not given {printed}"
    );
}
