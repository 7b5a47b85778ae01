//! Checks of what a run said: the error line and object, secrets that must
//! not appear, control characters, and the fields of a request sent.

use super::*;

use std::collections::HashMap;
use std::process::Output;

/// Exit 3, CONFIGURATION_ERROR, naming `path` and saying `why`.
pub fn assert_refused(out: &Run, path: &str, why: &str) {
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("CONFIGURATION_ERROR"), "{out:?}");
    assert!(out.stderr.contains(path), "names {path}: {out:?}");
    assert!(out.stderr.contains(why), "says {why}: {out:?}");
}

/// The lines of stderr that start like the program's own error line.
pub fn error_lines(run: &Run) -> Vec<&str> {
    run.stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

pub fn assert_no_raw_controls(run: &Run) {
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(!run.stderr.contains(bad), "stderr carries {bad:?}: {run:?}");
        assert!(!run.stdout.contains(bad), "stdout carries {bad:?}: {run:?}");
    }
}

/// Checks the stderr pair `error: MESSAGE [CODE]` / `  next: ACTION`.
pub fn assert_stderr_error(stderr: &str, code: &str, message: &str, action: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == format!("error: {message} [{code}]"))
        .unwrap_or_else(|| panic!("no `error: {message} [{code}]` line in stderr:\n{stderr}"));
    assert_eq!(
        lines.get(at + 1).copied(),
        Some(format!("  next: {action}").as_str()),
        "{stderr}"
    );
}

/// A `--json` failure: the exit code, the error object as the last JSON
/// document on stdout with exactly `code`, `message`, `action`, and the same
/// message and action on stderr. Returns (message, action).
pub fn assert_json_error(run: &Run, exit: i32, code: &str) -> (String, String) {
    assert_eq!(run.code, exit, "{run:?}");
    let docs = run.json_docs();
    let last = docs.last().unwrap_or_else(|| panic!("no JSON on stdout: {run:?}"));
    let top = last.as_object().expect("object");
    assert_eq!(top.keys().collect::<Vec<_>>(), ["error"], "{last}");
    let error = top["error"].as_object().expect("error object");
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["action", "code", "message"], "{last}");
    assert_eq!(error["code"], code, "{last}");
    let message = error["message"].as_str().expect("message").to_owned();
    let action = error["action"].as_str().expect("action").to_owned();
    assert!(!message.is_empty() && !action.is_empty(), "{last}");
    assert_stderr_error(&run.stderr, code, &message, &action);
    (message, action)
}

/// Nothing a user might paste into an issue may carry a secret.
pub fn assert_no_secrets(run: &Run, secrets: &[&str]) {
    for secret in secrets.iter().chain(&["test-client-secret-value"]) {
        assert!(!run.stderr.contains(secret), "stderr leaks {secret}:\n{}", run.stderr);
    }
}

/// The form fields of a request wiremock received.
pub fn form(request: &wiremock::Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body).into_owned().collect()
}

pub fn time(text: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text.as_str().expect("time string"))
        .expect("rfc3339")
        .with_timezone(&chrono::Utc)
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Table mode: the message of the `error: MESSAGE [CODE]` line on stderr.
pub fn stderr_error(run: &Run, code: &str) -> String {
    let suffix = format!(" [{code}]");
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: ")?.strip_suffix(suffix.as_str()))
        .unwrap_or_else(|| panic!("no `error: ... [{code}]` line: {run:?}"))
        .to_owned()
}

pub fn assert_no_leak(run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(!run.stdout.contains(secret), "stdout leaks {secret}: {run:?}");
        assert!(!run.stderr.contains(secret), "stderr leaks {secret}: {run:?}");
    }
}

/// `doctor`'s report line of check `name` (and its `next:` line, if any).
pub fn check_of<'a>(run: &'a Run, name: &str) -> (&'a str, Option<&'a str>) {
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.get(6..23).map(str::trim_end) == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` line: {run:?}"));
    let next = lines
        .get(at + 1)
        .filter(|l| l.trim_start().starts_with("next: "))
        .copied();
    (lines[at], next)
}

/// No token and no credential of the kit in `text`.
pub fn assert_no_secret_in(text: &str) {
    for secret in [
        OLD_ACCESS,
        OLD_REFRESH,
        NEW_ACCESS,
        NEW_REFRESH,
        READER_TOKEN,
        ADMIN_TOKEN,
        CLIENT_SECRET,
    ] {
        assert!(!text.contains(secret), "a secret was shown:\n{text}");
    }
}
