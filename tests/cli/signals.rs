//! SIGTERM and SIGINT: a signal that comes while Withings answers is held
//! until the new set is saved (and nothing more is sent); a second signal
//! stops at once. `serve` lets the refresh in flight finish, answers, and
//! exits 0; a Railway push cut short says where the set is.

use crate::support::*;

use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use wiremock::ResponseTemplate;

// ---------------------------------------------------------------------------
// refresh

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
// serve

#[test]
fn sigterm_lets_the_refresh_in_flight_finish_and_answer_then_exits_0() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(1500));
    let withings = withings_answering(slow).times(1);
    let env = given_fresh_server_user(&withings.uri());
    let mut server = env.serve(&[]);
    let answer = std::thread::scope(|scope| {
        let client = scope.spawn(|| server.admin_post("/admin/token/refresh", None));
        let sent = wait_until(Duration::from_secs(10), || !withings.requests().is_empty());
        assert!(sent, "the refresh never reached Withings:\n{}", server.log());
        server.signal("-TERM");
        client.join().expect("client")
    });
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    assert_eq!(answer.json()["outcome"], "refreshed");
    let status = server.wait(Duration::from_secs(10)).expect("serve did not stop");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the answer was saved");
    assert!(!env.journal_path().exists(), "the transaction ended");
    withings.verify();
}

/// A stopping server does not run the whole retry loop of a refresh in
/// flight: it finishes the request already sent, retries nothing more, and
/// exits 0 long before the backoff would have ended.
#[test]
fn sigterm_during_a_failing_refresh_sends_nothing_more_and_exits_0() {
    let failing = ResponseTemplate::new(500).set_delay(Duration::from_millis(800));
    let withings = withings_answering(failing).times(1);
    let env = given_fresh_server_user(&withings.uri());
    let before = env.store_bytes();
    let mut server = env.serve(&["--retries", "5", "--retry-delay", "3s"]);
    let started = std::thread::scope(|scope| {
        let client = scope.spawn(|| server.admin_post("/admin/token/refresh", None));
        let sent = wait_until(Duration::from_secs(10), || !withings.requests().is_empty());
        assert!(sent, "the refresh never reached Withings:\n{}", server.log());
        let started = Instant::now();
        server.signal("-TERM");
        let answer = client.join().expect("client");
        assert_eq!(answer.status, 503, "{answer:?}");
        started
    });
    let status = server.wait(Duration::from_secs(10)).expect("serve did not stop");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no backoff after the signal"
    );
    assert_eq!(env.store_bytes(), before, "nothing was answered, nothing changed");
    withings.verify();
}

#[test]
fn sigterm_or_sigint_after_a_refresh_exits_0_promptly_even_with_an_idle_connection() {
    for signal in ["-TERM", "-INT"] {
        let (withings, _issued) = withings_always_rotating();
        let env = given_fresh_server_user(&withings.uri());
        let mut server = env.serve(&[]);
        // A refresh opens the CLI's signal window (signals.rs) in this
        // process: afterwards a signal must still be the server's to handle.
        let answer = server.admin_post("/admin/token/refresh", Some("{}"));
        assert_eq!(answer.status, 200, "{answer:?}");
        let _idle = TcpStream::connect(&server.addr).expect("idle connection");
        let started = Instant::now();
        server.signal(signal);
        let status = server.wait(Duration::from_secs(8)).expect("serve did not stop");
        assert_eq!(status.code(), Some(0), "{signal}: {status:?}\n{}", server.log());
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{signal}: {:?}",
            started.elapsed()
        );
    }
}

/// SIGTERM while a refresh is in flight cuts the Railway push after the
/// save: the report says the set is saved (Withings did answer) and how
/// Railway catches up, never "interrupted before Withings answered" nor an
/// action to fix Railway's ids.
#[test]
fn a_railway_push_cut_by_shutdown_says_the_set_is_saved_and_how_railway_catches_up() {
    let slow = new_tokens(NEW_ACCESS, NEW_REFRESH).set_delay(Duration::from_millis(1500));
    let withings = withings_answering(slow).times(1);
    withings.mount(
        gql("variableCollectionUpsert")
            .respond_with(ResponseTemplate::new(200))
            .expect(0),
    );
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri())
        .serve_credentials()
        .set("RAILWAY_API_URL", format!("{}{GRAPHQL}", withings.uri()))
        .set("RAILWAY_TOKEN", "project-token-secret-ppp")
        .set("RAILWAY_PROJECT_ID", "proj-1111")
        .set("RAILWAY_SERVICE_ID", "svc-2222")
        .set("RAILWAY_ENVIRONMENT_ID", "env-3333");
    let mut server = env.serve(&["--check-interval", "1h"]);
    let answer = std::thread::scope(|scope| {
        let client = scope.spawn(|| server.admin_post("/admin/token/refresh", None));
        until_asked(&withings);
        server.signal("-TERM");
        client.join().expect("client")
    });
    assert_eq!(answer.status, 200, "{answer:?}\n{}", server.log());
    assert_eq!(answer.json()["outcome"], "refreshed");
    let railway = &answer.json()["railway_error"];
    assert_eq!(railway["code"], "INTERRUPTED", "{answer:?}");
    assert_eq!(
        railway["message"],
        "interrupted by signal 15 before Railway answered (the token set is saved in the store); nothing more was sent to Railway"
    );
    assert_eq!(
        railway["action"],
        "nothing is lost: the next `withings-token refresh --if-needed` (or `withings-token railway-sync`) brings Railway up to date"
    );
    let status = server.wait(Duration::from_secs(10)).expect("serve did not stop");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the answer was saved");
    assert!(!server.log().contains("RAILWAY_PROJECT_ID"), "{}", server.log());
    withings.verify();
}
