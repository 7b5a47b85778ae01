//! The core under hostile conditions (issue 9): stdout that cannot be
//! written, an env file that cannot be rewritten, copies that heal, signals
//! while Withings answers, redirect URLs that would skip the state check,
//! `--quiet` and `-vv` saying what they promise.
//! `cargo test --features failpoints --test cli hardening_core::`

use crate::support::*;

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::ResponseTemplate;

/// Runs `cmd` with stdout going to `stdout` (stderr captured).
fn run_with_stdout(mut cmd: StdCommand, stdout: impl Into<Stdio>) -> Output {
    cmd.stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run withings-token")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---------------------------------------------------------------------------
// Item 2: every write to stdout is checked

#[test]
fn a_full_disk_behind_output_env_is_output_failed_and_the_new_set_is_safe_in_the_store() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    let mut cmd = env.std_cmd();
    cmd.args(["refresh", "--output-env", "--no-env-file"]).args(FAST);

    let out = run_with_stdout(cmd, File::options().write(true).open("/dev/full").expect("/dev/full"));

    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("error: the output could not be written: stdout: No space left on device"),
        "{stderr}"
    );
    assert!(stderr.contains("[OUTPUT_FAILED]"), "{stderr}");
    assert!(
        stderr.contains("the new set is saved in ") && stderr.contains("(set generation 2)"),
        "the message says where the set is: {stderr}"
    );
    assert!(stderr.contains("`withings-token export`"), "{stderr}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert!(!stderr.contains(NEW_REFRESH), "{stderr}");
}

#[test]
fn a_closed_pipe_is_output_failed_never_a_panic() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    for args in [
        &["refresh"][..],
        &["status"],
        &["status", "--json"],
        &["completions", "bash"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = env.std_cmd();
        cmd.args(args).args(FAST);
        let out = run_with_stdout(cmd, writer);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(6), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Broken pipe") && stderr.contains("[OUTPUT_FAILED]"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(
        env.stored_refresh_token(),
        NEW_REFRESH,
        "the refresh saved its set first"
    );
}

// ---------------------------------------------------------------------------
// Items 3 and 4: a stale env file is exit 6 (even with --quiet) and heals

#[test]
#[ignore = "needs root (mounts a tmpfs): `bash .ci/test` runs it as root"]
fn a_failed_env_file_rewrite_is_exit_6_under_quiet_and_the_next_if_needed_heals_it() {
    let disk = TinyDisk::mount();
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    let env_file = disk.root.join("app.env");
    std::fs::write(
        &env_file,
        format!("APP_NAME=My App\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"),
    )
    .unwrap();
    let env_file_arg = env_file.display().to_string();
    disk.set_read_only(true);

    let out = env.run_fast(&["refresh", "--quiet", "--env-file", &env_file_arg]);

    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(out.stdout, "", "--quiet prints no table");
    assert!(
        out.stderr
            .contains(&format!("error: env file {env_file_arg} was not updated: ")),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("[ENV_FILE_UPDATE_FAILED]"),
        "--quiet never hides a stale copy: {out:?}"
    );
    assert!(
        out.stderr
            .contains("  next: the new set is safe in the store; fix the env file (permissions, disk), then run `withings-token refresh --if-needed`"),
        "{out:?}"
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let status = env.run(&["status", "--json", "--env-file", &env_file_arg]).json();
    let copies = status["copies"].as_array().expect("copies").clone();
    assert_eq!(copies.len(), 1, "{status}");
    assert_eq!(copies[0]["copy"], format!("env_file:{env_file_arg}"));
    assert_eq!(copies[0]["behind"], true);

    disk.set_read_only(false);
    let healed = env.run_fast(&["refresh", "--if-needed", "--json", "--env-file", &env_file_arg]);

    assert_eq!(healed.code, 0, "{healed:?}");
    let report = healed.json();
    assert_eq!(report["outcome"], "not_due", "no second rotation");
    assert_eq!(report["env_file"], "updated");
    assert_eq!(report["env_file_updated"], env_file_arg);
    let text = std::fs::read_to_string(&env_file).unwrap();
    assert!(text.starts_with("APP_NAME=My App\n"), "{text}");
    assert!(
        text.contains(&format!("WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n")),
        "{text}"
    );
    let status = env.run(&["status", "--json", "--env-file", &env_file_arg]).json();
    assert_eq!(status["copies"][0]["behind"], false, "{status}");
    withings.verify();
}

#[test]
fn a_token_with_a_control_character_is_kept_in_the_store_and_never_written_in_env_format() {
    let hostile = "new-refresh\nWITHINGS_CLIENT_SECRET=stolen";
    let withings = withings_answering(new_tokens(NEW_ACCESS, hostile)).times(1);
    let env = given_expired_store(&withings.uri());
    let env_file = env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));
    let before = std::fs::read(&env_file).unwrap();

    let out = env.run_fast(&["refresh", "--output-env"]);

    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(out.stdout, "", "no env line at all");
    assert!(out.stderr.contains("[ENV_FILE_UPDATE_FAILED]"), "{out:?}");
    assert!(out.stderr.contains("[OUTPUT_FAILED]"), "{out:?}");
    assert!(out.stderr.contains("WITHINGS_REFRESH_TOKEN"), "names the key: {out:?}");
    assert!(!out.stderr.contains("stolen"), "{out:?}");
    assert_eq!(std::fs::read(&env_file).unwrap(), before, "the env file is untouched");
    assert_eq!(env.stored_refresh_token(), hostile, "the store keeps it, JSON-escaped");
}

// ---------------------------------------------------------------------------
// Item 6: SIGTERM/SIGINT while the answer is in flight

/// Starts `refresh` against a Withings that answers after `delay`, and
/// returns once the request has reached it.
fn refresh_in_flight(delay: Duration) -> (TestEnv, Upstream, std::process::Child) {
    let answer = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(delay);
    let withings = withings_answering(answer).times(1);
    let env = given_expired_store(&withings.uri());
    let mut cmd = env.std_cmd();
    cmd.args(["refresh", "--no-env-file", "--timeout", "30s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn refresh");
    let sent = wait_until(Duration::from_secs(10), || !withings.requests().is_empty());
    assert!(sent, "the request never reached Withings");
    (env, withings, child)
}

/// bash's builtin `kill`: no procps needed on a fresh machine.
fn send(signal: &str, child: &std::process::Child) {
    let status = StdCommand::new("bash")
        .args(["-c", &format!("kill {signal} {}", child.id())])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn a_sigterm_while_withings_answers_is_held_until_the_new_set_is_saved() {
    for (signal, code) in [("-TERM", 143), ("-INT", 130), ("-HUP", 129)] {
        let (env, _withings, child) = refresh_in_flight(Duration::from_millis(1500));
        send(signal, &child);
        let out = child.wait_with_output().expect("wait");
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "{signal}: {stderr}");
        assert_eq!(
            env.stored_refresh_token(),
            NEW_REFRESH,
            "{signal}: the answer was saved"
        );
        assert!(stderr.contains("interrupted (signal"), "{signal}: {stderr}");
        assert!(stderr.contains("(set generation 2)"), "{signal}: {stderr}");
        assert!(!env.journal_path().exists(), "{signal}: the transaction ended");
    }
}

/// A held signal ends the retries: the request in flight is finished, no
/// new attempt or backoff starts, and the person is told at once.
#[test]
fn a_held_signal_sends_nothing_more_and_says_so() {
    let failing = ResponseTemplate::new(500).set_delay(Duration::from_millis(800));
    let withings = withings_answering(failing).times(1);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();
    let mut cmd = env.std_cmd();
    cmd.args(["refresh", "--no-env-file", "--retries", "5", "--retry-delay", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn refresh");
    assert!(wait_until(Duration::from_secs(10), || !withings.requests().is_empty()));
    let started = Instant::now();
    send("-INT", &child);

    let out = child.wait_with_output().expect("wait");

    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no backoff after the signal"
    );
    assert!(
        stderr.contains("note: interrupted: finishing the request already sent"),
        "{stderr}"
    );
    assert!(stderr.contains("[INTERRUPTED]"), "{stderr}");
    assert_eq!(env.store_bytes(), before, "nothing was answered, nothing changed");
    withings.verify();
}

#[test]
fn a_second_signal_stops_at_once() {
    let (env, _withings, child) = refresh_in_flight(Duration::from_secs(20));
    let started = Instant::now();
    send("-TERM", &child);
    std::thread::sleep(Duration::from_millis(100));
    send("-TERM", &child);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.signal(),
        Some(15),
        "killed by the second signal: {:?}",
        out.status
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it did not wait for the answer"
    );
    assert_eq!(
        env.stored_refresh_token(),
        OLD_REFRESH,
        "nothing was answered, nothing saved"
    );
}

// ---------------------------------------------------------------------------
// Item 12: the state check cannot be skipped

#[test]
fn a_redirect_url_without_state_or_from_another_callback_is_refused_before_sending() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let issued = env.run(&["auth-url", "--json"]);
    assert_eq!(issued.code, 0, "{issued:?}");
    let state = issued.json()["state"].as_str().unwrap().to_owned();

    for url in [
        "https://example.com/callback?code=stolen-code".to_owned(),
        format!("https://evil.example/callback?code=stolen-code&state={state}"),
        format!("https://example.com/other?code=stolen-code&state={state}"),
    ] {
        let out = env.run_fast(&["exchange", &url, "--json"]);
        assert_eq!(out.code, 4, "{url}: {out:?}");
        assert_eq!(out.json()["error"]["code"], "INVALID_STATE", "{url}");
        assert!(
            out.stderr.contains("nothing was sent") || out.stderr.contains("was not sent"),
            "{url}: {out:?}"
        );
    }
    withings.verify();
}

// ---------------------------------------------------------------------------
// --quiet, -vv and the messages

#[test]
fn quiet_prints_nothing_on_success_unless_a_format_was_asked_for() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--quiet"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", ""),
        "{out:?}"
    );

    let out = env.run(&["status", "--quiet", "--output-env"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 4, "{out:?}");
    assert!(
        out.stdout.contains(&format!("WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n")),
        "{out:?}"
    );
}

#[test]
fn very_verbose_shows_the_decision_and_the_token_source() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    let out = env.run(&["refresh", "--if-needed", "--no-env-file", "-vv"]);
    assert_eq!(out.code, 0, "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("debug: decision: not due until "))
        .unwrap_or_else(|| panic!("no decision line: {out:?}"));
    assert!(line.contains("token source: Store; buffer: Some(60) min"), "{line}");
}

#[test]
fn a_refused_seed_with_an_empty_store_does_not_claim_the_store_is_older() {
    let withings = withings_answering(refused_refresh()).times(1);
    let mut env = TestEnv::new();
    env.withings(&withings.uri())
        .set("WITHINGS_REFRESH_TOKEN", "seed-refresh-token");

    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 4, "{out:?}");
    let message = out.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(!message.contains("newer than the store's"), "{message}");
    assert!(message.contains("the store holds no set to fall back on"), "{message}");
}

#[test]
fn an_interrupted_request_on_an_empty_store_says_nothing_was_ever_saved() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = TestEnv::new();
    env.withings(&withings.uri())
        .set("WITHINGS_REFRESH_TOKEN", "seed-refresh-token");
    let journal = env.journal_path();
    std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
    let mark = serde_json::json!({"pid": 4242, "started_at": "2026-01-01T00:00:00Z", "generation": 0, "grant": "refresh_token"});
    std::fs::write(&journal, mark.to_string()).unwrap();

    let out = env.run_fast(&["refresh", "--no-env-file"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("a previous run (pid 4242) died while asking Withings for a refresh_token grant at 2026-01-01T00:00:00Z; nothing was ever saved in this store"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("generation 0 is the last one saved"), "{out:?}");
}

#[test]
fn a_recovery_with_the_stores_token_is_reported_as_such() {
    let withings = Upstream::start();
    withings.mount(refresh_of("dead-env-token").respond_with(refused_refresh()).expect(1));
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    let mut env = given_expired_store(&withings.uri());
    env.set("WITHINGS_REFRESH_TOKEN", "dead-env-token").set(
        "WITHINGS_TOKEN_LAST_REFRESHED",
        rfc3339(chrono::Utc::now() + chrono::Duration::minutes(5)),
    );

    let out = env.run_fast(&["refresh", "--json", "--no-env-file"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report: Value = out.json();
    assert_eq!(report["via"], "store_fallback");
    assert_eq!(report["source"], "env");
    assert!(!out.stderr.contains("previous generation"), "{out:?}");
    withings.verify();
}

#[test]
fn absurd_dates_and_buffers_never_panic() {
    let env = TestEnv::new();
    let store = serde_json::json!({
        "version": 1, "generation": 1,
        "tokens": {"access_token": "a", "refresh_token": "r", "expires_at": "-262143-01-01T00:00:00Z", "last_refreshed": "+262142-12-31T23:59:59Z"},
    });
    env.write_store_bytes(store.to_string().as_bytes());
    for args in [
        &["status"][..],
        &["status", "--json", "--buffer", "366d"],
        &["refresh", "--dry-run"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.json()["should_refresh"], true);
}

/// Attack finding: a future-dated WITHINGS_TOKEN_LAST_REFRESHED made a stale
/// environment token win on every run, even one the store had rotated away.
#[test]
fn a_seed_dated_in_the_future_or_already_rotated_never_beats_the_store() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .expect(1),
    );
    let mut env = given_expired_store(&withings.uri());
    let later = |minutes| rfc3339(chrono::Utc::now() + chrono::Duration::minutes(minutes));
    env.set("WITHINGS_REFRESH_TOKEN", "stale-env-token")
        .set("WITHINGS_TOKEN_LAST_REFRESHED", later(120));

    let out = env.run_fast(&["refresh", "--json", "--no-env-file"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["source"], "store", "a seed from the future is not trusted");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);

    // The store's previous token, dated just after the store's set: still ignored.
    env.set("WITHINGS_REFRESH_TOKEN", OLD_REFRESH)
        .set("WITHINGS_TOKEN_LAST_REFRESHED", later(1));
    let status = env.run(&["status", "--json", "--no-env-file"]).json();
    assert_eq!(status["source"], "store", "{status}");
    withings.verify();
}

/// Attack finding: a set authorised elsewhere and written into the env file
/// while a refresh was in flight was overwritten, and then existed nowhere.
#[test]
fn an_env_file_changed_during_the_refresh_is_left_as_it_is() {
    let answer = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(1200));
    let withings = withings_answering(answer).times(1);
    let env = given_expired_store(&withings.uri());
    let env_file = env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));
    let mut cmd = env.std_cmd();
    cmd.args(["refresh", "--retries", "0", "--timeout", "10s"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn refresh");
    assert!(wait_until(Duration::from_secs(10), || !withings.requests().is_empty()));
    let theirs = "WITHINGS_REFRESH_TOKEN=reauthorised-elsewhere\n";
    std::fs::write(&env_file, theirs).unwrap();

    let out = child.wait_with_output().expect("wait");

    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("changed while this run was working"), "{stderr}");
    assert!(stderr.contains("[ENV_FILE_UPDATE_FAILED]"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), theirs, "their set is kept");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "ours is in the store");
}

// ---------------------------------------------------------------------------
// export, and GitHub Actions' masks (the repair named by OUTPUT_FAILED)

#[test]
fn export_prints_the_stored_set_as_the_four_env_lines_and_sends_nothing() {
    let env = given_store_expiring_in(3 * 3600);
    let store = env.store_json();

    let out = env.run(&["export", "--quiet"]);

    assert_eq!(out.code, 0, "{out:?}");
    let tokens = &store["tokens"];
    let expected = format!(
        "WITHINGS_ACCESS_TOKEN={OLD_ACCESS}\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\nWITHINGS_TOKEN_EXPIRES_AT={}\nWITHINGS_TOKEN_LAST_REFRESHED={}\n",
        tokens["expires_at"].as_str().unwrap(),
        tokens["last_refreshed"].as_str().unwrap()
    );
    assert_eq!(out.stdout, expected);
    assert_eq!(env.store_json(), store, "nothing written");

    let empty = TestEnv::new();
    let out = empty.run(&["export"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("holds no token set to export"), "{out:?}");
}

#[test]
fn under_github_actions_tokens_are_masked_on_stderr_and_stdout_keeps_the_four_lines() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.set("GITHUB_ACTIONS", "true");

    let out = env.run_fast(&["refresh", "--output-env", "--no-env-file"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 4, "{out:?}");
    assert!(out.stdout.starts_with(&format!(
        "WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\nWITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n"
    )));
    assert!(out.stderr.contains(&format!("::add-mask::{NEW_ACCESS}\n")), "{out:?}");
    assert!(out.stderr.contains(&format!("::add-mask::{NEW_REFRESH}\n")), "{out:?}");
    // Without GITHUB_ACTIONS there is no mask line.
    let out = given_store_expiring_in(3600).run(&["export"]);
    assert!(!out.stderr.contains("::add-mask::"), "{out:?}");
}
