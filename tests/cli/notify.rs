//! `notify --test`: one `test` event straight to every sink, one row each.
//! Webhooks against a local receiver that checks the Standard Webhooks
//! signature as a receiver's library does (`support::webhooks`): retried on
//! 500 and 429 (its `Retry-After` honoured, never past the timeout), not
//! on 400. Command hooks get the event on stdin and as variables, without
//! the tool's secrets, and are killed (with their children) after 10 s.
//! `--ping` pings the dead-man URLs. Nothing delivered carries a secret or
//! the webhook's path, and no output shows either.

use crate::support::*;

use std::path::Path;
use std::time::Duration;

use wiremock::matchers::{method, path};

/// Secrets a user of these tests holds, none of which may reach a body,
/// a hook's environment or the output.
const REFRESH_SEED: &str = "seed-refresh-token-9911";
const ADMIN_TOKEN: &str = "admin-api-token-value-5522";
const PREFIXED_REFRESH: &str = "alice-refresh-token-3377";

/// A user (no Withings app, no store) whose webhook is [`HOOK_PATH`] on
/// `receiver`, signed with [`WEBHOOK_SECRET`].
fn given_a_signed_webhook(receiver: &Upstream) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_WEBHOOK_URL", hook_url(receiver))
        .set("WITHINGS_TOKEN_WEBHOOK_SECRET", WEBHOOK_SECRET);
    env
}

/// Everything a webhook test knows that must never be printed or sent.
fn webhook_secrets() -> Vec<String> {
    vec![
        WEBHOOK_SECRET.to_owned(),
        WEBHOOK_SECRET.trim_start_matches("whsec_").to_owned(),
        webhook_key_text(),
        HOOK_PATH.to_owned(),
        "hook-path-secret-4711".to_owned(),
    ]
}

fn assert_nothing_leaked(receiver: &Upstream, run: &Run) {
    let secrets = webhook_secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secret_in_bodies(receiver, &secrets);
    assert_no_leak(run, &secrets);
}

/// This host's name, as the test event names it.
fn host_name() -> String {
    let out = std::process::Command::new("uname")
        .arg("-n")
        .output()
        .expect("uname -n");
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

/// The receiver's URL as every output shows it: scheme and host only.
fn shown(receiver: &Upstream) -> String {
    format!("{}/…", receiver.uri())
}

/// The rows of a `--json` report: (kind, shown, result, why).
fn rows(run: &Run) -> Vec<(String, String, String, Option<String>)> {
    let report = run.json();
    report["sinks"]
        .as_array()
        .expect("sinks")
        .iter()
        .map(|row| {
            (
                row["kind"].as_str().expect("kind").to_owned(),
                row["shown"].as_str().expect("shown").to_owned(),
                row["result"].as_str().expect("result").to_owned(),
                row["why"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// A table as the output module draws it (comfy-table's UTF8_FULL_CONDENSED).
fn drawn_table(header: [&str; 3], rows: &[[&str; 3]]) -> String {
    let width = |column: usize| {
        std::iter::once(header[column])
            .chain(rows.iter().map(|r| r[column]))
            .map(|cell| cell.chars().count())
            .max()
            .unwrap_or(0)
            + 2
    };
    let widths = [width(0), width(1), width(2)];
    let rule = |left: &str, fill: &str, mid: &str, right: &str| {
        let parts: Vec<String> = widths.iter().map(|w| fill.repeat(*w)).collect();
        format!("{left}{}{right}\n", parts.join(mid))
    };
    let line = |cells: [&str; 3]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!(" {cell}{} ", " ".repeat(w - 2 - cell.chars().count())))
            .collect();
        format!("│{}│\n", parts.join("┆"))
    };
    let mut text = rule("┌", "─", "┬", "┐");
    text.push_str(&line(header));
    text.push_str(&rule("╞", "═", "╪", "╡"));
    for row in rows {
        text.push_str(&line(*row));
    }
    text.push_str(&rule("└", "─", "┴", "┘"));
    text
}

#[test]
fn a_signed_test_event_reaches_the_webhook_and_verifies_as_a_receiver_checks_it() {
    let receiver = webhook_receiver();
    receiver.mount(
        hook_post()
            .and(signed_with(WEBHOOK_SECRET))
            .respond_with(statuses_in_turn([204]))
            .expect(1),
    );
    let env = given_a_signed_webhook(&receiver);

    let run = env.run(&["notify", "--test"]);

    assert_eq!(run.code, 0, "{run:?}");
    let table = drawn_table(["sink", "to", "result"], &[["webhook", &shown(&receiver), "delivered"]]);
    assert_eq!(run.stdout, table, "{run:?}");
    let requests = hook_requests(&receiver);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(verify_signature(request, WEBHOOK_SECRET), Ok(()));
    assert_eq!(header(request, "content-type").as_deref(), Some("application/json"));
    let event: Value = request.body_json().expect("a JSON body");
    let mut keys: Vec<&str> = event.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["account", "action", "at", "code", "id", "message", "type"]);
    assert_eq!(event["type"], "test");
    assert_eq!(event["account"], "default");
    assert_eq!(event["code"], "TEST");
    assert_eq!(event["action"], "");
    assert_eq!(
        event["message"],
        format!("a test event from withings-token on {}", host_name())
    );
    assert!(
        (chrono::Utc::now() - time(&event["at"])).num_seconds().abs() < 300,
        "{event}"
    );
    // The receiver's deduplication key is the event's id.
    assert_eq!(header(request, "webhook-id").as_deref(), event["id"].as_str());
    assert!(event["id"].as_str().is_some_and(|id| id.starts_with("msg_")), "{event}");
    assert_nothing_leaked(&receiver, &run);
}

#[test]
fn a_webhook_signed_with_another_secret_fails_verification() {
    let receiver = webhook_receiver();
    // Signed right or not, the receiver answers 200: the check is ours.
    receiver.mount(hook_post().respond_with(statuses_in_turn([200])).expect(1));
    let mut env = given_a_signed_webhook(&receiver);
    env.set("WITHINGS_TOKEN_WEBHOOK_SECRET", "another secret taken as it is");

    let run = env.run(&["notify", "--test"]);

    assert_eq!(run.code, 0, "{run:?}");
    let request = &hook_requests(&receiver)[0];
    assert_eq!(
        verify_signature(request, "another secret taken as it is"),
        Ok(()),
        "a secret without whsec_ is the key as it is"
    );
    assert!(verify_signature(request, WEBHOOK_SECRET).is_err());
}

#[test]
fn an_unsigned_webhook_still_carries_its_id_and_timestamp() {
    let receiver = webhook_receiver();
    receiver.mount(hook_post().respond_with(statuses_in_turn([200])).expect(1));
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_WEBHOOK_URL", hook_url(&receiver));

    let run = env.run(&["notify", "--test", "--json"]);

    assert_eq!(run.code, 0, "{run:?}");
    let request = &hook_requests(&receiver)[0];
    assert_eq!(header(request, "webhook-signature"), None);
    let event: Value = request.body_json().expect("JSON");
    assert_eq!(header(request, "webhook-id").as_deref(), event["id"].as_str());
    let sent_at: i64 = header(request, "webhook-timestamp")
        .expect("timestamp")
        .parse()
        .expect("seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 300);
    assert_eq!(run.json()["event_id"], event["id"]);
}

#[test]
fn a_500_then_a_200_is_delivered_on_the_second_try_with_the_same_id() {
    let receiver = webhook_receiver();
    receiver.mount(
        hook_post()
            .and(signed_with(WEBHOOK_SECRET))
            .respond_with(statuses_in_turn([500, 200]))
            .expect(2),
    );
    let env = given_a_signed_webhook(&receiver);

    let run = env.run(&["notify", "--test", "--json", "--notify-timeout", "20s"]);

    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        rows(&run),
        [("webhook".into(), shown(&receiver), "delivered".into(), None)]
    );
    let requests = hook_requests(&receiver);
    assert_eq!(requests.len(), 2);
    let ids: Vec<Option<String>> = requests.iter().map(|r| header(r, "webhook-id")).collect();
    assert_eq!(ids[0], ids[1], "every try carries the event's id");
    assert_eq!(requests[0].body, requests[1].body);
    assert_nothing_leaked(&receiver, &run);
}

#[test]
fn a_429_is_tried_again_after_the_wait_its_retry_after_asks_for() {
    let receiver = webhook_receiver();
    // 2 s: a pause of our own (250 ms) could not move the timestamp by two.
    let limited = ResponseTemplate::new(429).insert_header("Retry-After", "2");
    receiver.mount(
        hook_post()
            .and(signed_with(WEBHOOK_SECRET))
            .respond_with(answers([limited, ResponseTemplate::new(200)]))
            .expect(2),
    );
    let env = given_a_signed_webhook(&receiver);

    let run = env.run(&["notify", "--test", "--json", "--notify-timeout", "20s"]);

    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(rows(&run)[0].2, "delivered");
    let stamps: Vec<i64> = hook_requests(&receiver)
        .iter()
        .map(|r| {
            header(r, "webhook-timestamp")
                .expect("timestamp")
                .parse()
                .expect("seconds")
        })
        .collect();
    assert_eq!(stamps.len(), 2);
    assert!(stamps[1] - stamps[0] >= 2, "the second try waited: {stamps:?}");
}

#[test]
fn a_retry_after_past_the_notify_timeout_is_not_waited_for() {
    let receiver = webhook_receiver();
    receiver.mount(
        hook_post()
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
            .expect(1),
    );
    let env = given_a_signed_webhook(&receiver);

    let run = env.run(&["notify", "--test", "--json", "--notify-timeout", "3s"]);

    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(
        rows(&run),
        [(
            "webhook".into(),
            shown(&receiver),
            "failed".into(),
            Some("HTTP 429, asked to wait 120 s (1 try)".into())
        )]
    );
}

#[test]
fn a_400_is_refused_after_exactly_one_request() {
    let receiver = webhook_receiver();
    receiver.mount(
        hook_post()
            .and(signed_with(WEBHOOK_SECRET))
            .respond_with(statuses_in_turn([400]))
            .expect(1),
    );
    let env = given_a_signed_webhook(&receiver);

    let run = env.run(&["notify", "--test", "--notify-timeout", "20s"]);

    assert_eq!(run.code, 5, "{run:?}");
    let table = drawn_table(
        ["sink", "to", "result"],
        &[["webhook", &shown(&receiver), "refused: HTTP 400"]],
    );
    assert_eq!(run.stdout, table);
    assert_stderr_error(
        &run.stderr,
        "UPSTREAM_ERROR",
        &format!("1 of 1 sinks did not take it: webhook {}", shown(&receiver)),
        "each row says why: a refused webhook needs its URL or secret fixed; a failed one, its receiver (or the command) looked at; real events wait in the outbox and are sent again by the next run",
    );
    assert_eq!(hook_requests(&receiver).len(), 1);
    assert_nothing_leaked(&receiver, &run);
}

#[test]
fn a_webhook_that_cannot_be_reached_fails_within_the_timeout_without_its_path() {
    let mut env = TestEnv::new();
    let url = format!("{}{HOOK_PATH}", closed_port_url());
    env.set("WITHINGS_TOKEN_WEBHOOK_URL", &url);

    let run = env.run(&["notify", "--test", "--json", "--notify-timeout", "1s"]);

    assert_eq!(run.code, 5, "{run:?}");
    let rows = rows(&run);
    assert_eq!(rows[0].2, "failed", "{run:?}");
    let why = rows[0].3.clone().unwrap_or_default();
    assert!(why.starts_with("connection failed ("), "{why}");
    assert!(why.ends_with(" tries)"), "{why}");
    assert_no_leak(&run, &[HOOK_PATH, "hook-path-secret-4711"]);
}

#[test]
fn slack_and_text_formats_are_what_their_receivers_show() {
    let receiver = webhook_receiver();
    receiver.mount(hook_post().respond_with(statuses_in_turn([200])).expect(2));
    let mut env = given_a_signed_webhook(&receiver);
    let message = format!("a test event from withings-token on {}", host_name());

    env.set("WITHINGS_TOKEN_WEBHOOK_FORMAT", "slack");
    assert_eq!(env.run(&["notify", "--test"]).code, 0);
    env.set("WITHINGS_TOKEN_WEBHOOK_FORMAT", "text");
    assert_eq!(env.run(&["notify", "--test"]).code, 0);

    let requests = hook_requests(&receiver);
    let slack: Value = requests[0].body_json().expect("JSON");
    assert_eq!(slack, json!({ "text": format!("default: test (TEST): {message}") }));
    assert_eq!(
        header(&requests[1], "content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        String::from_utf8_lossy(&requests[1].body),
        format!("default: test (TEST): {message}\n")
    );
    assert_eq!(
        header(&requests[1], "title").as_deref(),
        Some("withings-token: default test")
    );
    for request in &requests {
        assert_eq!(verify_signature(request, WEBHOOK_SECRET), Ok(()));
    }
}

/// A user whose hook is `command`, with secrets in the environment that
/// the hook must not inherit.
fn given_a_hook(command: &str) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_ON_EVENT", command)
        .set("WITHINGS_REFRESH_TOKEN", REFRESH_SEED)
        .set("WITHINGS_CLIENT_SECRET", CLIENT_SECRET)
        .set("ADMIN_API_TOKEN", ADMIN_TOKEN)
        .set("ALICE_WITHINGS_REFRESH_TOKEN", PREFIXED_REFRESH)
        .set("WITHINGS_TOKEN_WEBHOOK_SECRET", WEBHOOK_SECRET);
    env
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_command_hook_gets_the_event_on_stdin_and_as_variables_but_no_secret() {
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().display().to_string();
    let command = format!(
        r#"cat > "{dir}/stdin.json"; printf %s "$WITHINGS_TOKEN_EVENT_TYPE" > "{dir}/type"; env > "{dir}/env""#
    );
    let env = given_a_hook(&command);

    let run = env.run(&["notify", "--test", "--json"]);

    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        rows(&run),
        [("command".into(), command.clone(), "delivered".into(), None)]
    );
    let event: Value = serde_json::from_str(&read(&out.path().join("stdin.json"))).expect("the event as JSON");
    let mut keys: Vec<&str> = event.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["account", "action", "at", "code", "id", "message", "type"]);
    assert_eq!(event["type"], "test");
    assert_eq!(event["account"], "default");
    assert_eq!(event["code"], "TEST");
    assert_eq!(run.json()["event_id"], event["id"]);
    assert_eq!(read(&out.path().join("type")), "test");
    let variables = read(&out.path().join("env"));
    for expected in [
        format!("WITHINGS_TOKEN_EVENT_ID={}", event["id"].as_str().expect("id")),
        "WITHINGS_TOKEN_EVENT_ACCOUNT=default".to_owned(),
        "WITHINGS_TOKEN_EVENT_CODE=TEST".to_owned(),
        format!("WITHINGS_TOKEN_EVENT_AT={}", event["at"].as_str().expect("at")),
        "PATH=/usr/bin:/bin".to_owned(),
    ] {
        assert!(
            variables.lines().any(|l| l == expected),
            "no {expected} in:\n{variables}"
        );
    }
    for secret in [
        REFRESH_SEED,
        CLIENT_SECRET,
        ADMIN_TOKEN,
        PREFIXED_REFRESH,
        WEBHOOK_SECRET,
    ] {
        assert!(!variables.contains(secret), "the hook got {secret}:\n{variables}");
    }
}

#[test]
fn a_failing_hook_is_a_failed_row_and_its_stderr_one_log_line() {
    let env = given_a_hook(&format!(
        "echo 'no luck with' \"$WITHINGS_CLIENT_SECRET\" {ADMIN_TOKEN} >&2; exit 3"
    ));

    let run = env.run(&["notify", "--test", "--json"]);

    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(rows(&run)[0].2, "failed");
    assert_eq!(rows(&run)[0].3.as_deref(), Some("exited with status 3"));
    // The hook's variable is empty; the secret written into the command is
    // known to this process, and shown nowhere.
    let logged: Vec<&str> = run.stderr.lines().filter(|l| l.contains("wrote on stderr")).collect();
    assert_eq!(
        logged,
        [
            r#"warning: the on_event command echo 'no luck with' "$WITHINGS_CLIENT_SECRET" [redacted] >&2; exit 3 wrote on stderr: no luck with  [redacted]"#
        ],
        "{run:?}"
    );
    assert_no_leak(&run, &[ADMIN_TOKEN, CLIENT_SECRET]);
}

/// The state of process `pid` (`/proc/PID/stat`'s third field); `None`
/// once it is gone.
fn process_state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_hook_still_running_after_10_s_is_killed_with_its_children() {
    let out = tempfile::tempdir().expect("temp dir");
    let pid_file = out.path().join("child.pid");
    let env = given_a_hook(&format!(r#"sleep 30 & echo $! > "{}"; wait"#, pid_file.display()));

    let run = env.run(&["notify", "--test", "--json", "--notify-timeout", "20s"]);

    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(rows(&run)[0].3.as_deref(), Some("killed after 10 s"));
    let child = read(&pid_file).trim().to_owned();
    // Gone, or dead and waiting for init to reap it: never still sleeping.
    assert!(
        wait_until(Duration::from_secs(10), || matches!(
            process_state(&child),
            None | Some('Z')
        )),
        "the hook's child {child} still runs: {:?}",
        process_state(&child)
    );
}

#[test]
fn without_a_sink_notify_test_is_a_configuration_error() {
    let env = TestEnv::new();

    let run = env.run(&["notify", "--test"]);

    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_stderr_error(
        &run.stderr,
        "CONFIGURATION_ERROR",
        "no event sink is configured: there is nothing to send a test event to",
        "set a webhook with `--webhook-url URL` (WITHINGS_TOKEN_WEBHOOK_URL, `webhook_url` in the config file) or a command with `--on-event CMD` (WITHINGS_TOKEN_ON_EVENT, `on_event`)",
    );
    let ping = env.run(&["notify", "--ping"]);
    assert_eq!(ping.code, 3, "{ping:?}");
    assert_stderr_error(
        &ping.stderr,
        "CONFIGURATION_ERROR",
        "no dead-man ping URL is configured: there is nothing to ping",
        "set one with `--ping-url URL` (WITHINGS_TOKEN_PING_URL, `ping_url` in the config file)",
    );
}

#[test]
fn a_webhook_url_that_is_not_http_is_a_configuration_error_that_hides_it() {
    let mut env = TestEnv::new();
    env.set(
        "WITHINGS_TOKEN_WEBHOOK_URL",
        "ftp://files.example.com/hook-path-secret-4711",
    );

    let run = env.run(&["notify", "--test"]);

    assert_eq!(run.code, 3, "{run:?}");
    assert_stderr_error(
        &run.stderr,
        "CONFIGURATION_ERROR",
        "WITHINGS_TOKEN_WEBHOOK_URL (or --webhook-url, webhook_url) holds a `ftp:` URL, not an http(s) one",
        "set it to the whole https:// URL the receiver gave you",
    );
    assert_no_leak(&run, &["hook-path-secret-4711"]);
}

#[test]
fn notify_ping_sends_one_success_ping_with_the_test_message() {
    let pings = Upstream::start();
    let ping_path = "/ping/5f1b-ping-uuid-secret";
    pings.mount(
        Mock::given(method("POST"))
            .and(path(ping_path))
            .respond_with(statuses_in_turn([200]))
            .expect(1),
    );
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_PING_URL", format!("{}{ping_path}", pings.uri()));

    let run = env.run(&["notify", "--ping"]);

    assert_eq!(run.code, 0, "{run:?}");
    let table = drawn_table(["sink", "to", "result"], &[["ping", &shown(&pings), "delivered"]]);
    assert_eq!(run.stdout, table);
    let requests = pings.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&requests[0].body),
        format!("a test event from withings-token on {}", host_name())
    );
    assert_no_leak(&run, &["5f1b-ping-uuid-secret"]);
}
