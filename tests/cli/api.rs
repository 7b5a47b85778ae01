//! `api ACTION PATH [KEY=VALUE…]`: a consumer's call of Withings' data
//! API, through `serve`'s proxy with a reader token (no Withings token on
//! its side) or locally with the account's own token; Withings' answer on
//! stdout as it came, a non-zero Withings status (or the proxy's refusal)
//! said on stderr with its exit code.

use crate::support::*;

/// The sandbox's answer to `getmeas` with `meastype=1&startdate=1796191200`
/// for its first person, as it writes it.
fn first_persons_weights() -> String {
    let body = first_persons_weights_body();
    // Withings' order: `status` first.
    format!("{{\"status\":0,\"body\":{body}}}")
}

const GETMEAS: [&str; 5] = ["api", "getmeas", "measure", "meastype=1", "startdate=1796191200"];

/// No token the sandbox issued (`sbx_…`) and no credential of the server
/// is shown.
fn assert_no_token_shown(run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("sbx_"), "a token was shown: {run:?}");
        assert!(!text.contains(READER_TOKEN), "the reader token was shown: {run:?}");
    }
}

/// A consumer that knows only the server's URL and its reader token.
fn consumer() -> TestEnv {
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_READER_TOKEN", READER_TOKEN);
    env
}

#[test]
fn through_the_proxy_a_reader_reads_the_measures_without_a_withings_token() {
    let (sandbox, mut owner) = given_authorised_sandbox();
    owner.serve_credentials();
    let server = owner.serve(&["--check-interval", "1h"]);
    let url = format!("http://{}", server.addr);
    let before = sandbox.stats();

    let mut args = vec!["--server", url.as_str()];
    args.extend(GETMEAS);
    let run = consumer().run(&args);

    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, first_persons_weights());
    assert_eq!(run.stderr, "");
    assert_no_token_shown(&run);
    assert_eq!(stat_delta(&before, &sandbox.stats(), "data_requests"), 1);
    let with_slash = consumer().run(&["--server", &url, "--account", "default", "api", "getdevice", "/v2/user"]);
    assert_eq!(with_slash.code, 0, "{with_slash:?}");
    assert_eq!(
        with_slash.json()["body"]["devices"][0]["deviceid"],
        "sbx-scale-31415926"
    );
    assert_no_token_shown(&with_slash);
}

#[test]
fn through_the_proxy_withings_rate_limit_is_the_same_body_and_exit_code() {
    let (sandbox, mut owner) = given_authorised_sandbox();
    owner.serve_credentials();
    let server = owner.serve(&["--check-interval", "1h"]);
    sandbox.fault(json!({"target": "data", "kind": "status601", "wait_seconds": 7}));

    let url = format!("http://{}", server.addr);
    let mut args = vec!["--server", url.as_str()];
    args.extend(GETMEAS);
    let run = consumer().run(&args);

    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(
        run.stdout,
        r#"{"status":601,"body":{"wait_seconds":7},"error":"Same arguments in less than 10 seconds"}"#
    );
    assert_eq!(
        stderr_error(&run, "RATE_LIMITED"),
        "Withings is rate limiting this client: status 601 (Same arguments in less than 10 seconds)"
    );
    assert_no_token_shown(&run);
}

#[test]
fn a_reader_scoped_to_another_account_is_refused_with_the_proxy_s_403() {
    let withings = silent_withings();
    let alice_reader = "mcp-alice-token-0123456789";
    let owner = crate::serve_accounts::given_alice_and_her_reader(&withings.uri(), alice_reader);
    let server = owner.serve(&["--check-interval", "1h"]);
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_READER_TOKEN", alice_reader);

    let url = format!("http://{}", server.addr);
    let run = env.run(&["--server", &url, "--account", "default", "api", "getmeas", "measure"]);

    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        stderr_error(&run, "FORBIDDEN"),
        "the reader mcp-alice may not read account default"
    );
    assert!(!run.stderr.contains(alice_reader), "{run:?}");
    withings.verify();
}

#[test]
fn a_server_that_does_not_answer_is_a_network_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);

    let run = consumer().run(&["--server", &url, "--retries", "0", "api", "getmeas", "measure"]);

    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(run.stdout, "");
    stderr_error(&run, "NETWORK_ERROR");
}

#[test]
fn locally_the_account_s_own_token_reads_the_measures() {
    let (sandbox, env) = given_authorised_sandbox();
    let before = sandbox.stats();

    let run = env.run(&GETMEAS);

    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, first_persons_weights());
    assert_eq!(run.stderr, "");
    assert_no_token_shown(&run);
    let after = sandbox.stats();
    assert_eq!(stat_delta(&before, &after, "data_requests"), 1);
    assert_eq!(stat_delta(&before, &after, "token_requests"), 0);
}

#[test]
fn withings_rate_limit_prints_the_body_says_the_error_and_exits_5() {
    let (sandbox, env) = given_authorised_sandbox();
    sandbox.fault(json!({"target": "data", "kind": "status601"}));

    let run = env.run(&GETMEAS);

    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(
        run.stdout,
        r#"{"status":601,"body":{"wait_seconds":1},"error":"Same arguments in less than 10 seconds"}"#
    );
    assert_stderr_error(
        &run.stderr,
        "RATE_LIMITED",
        "Withings is rate limiting this client: status 601 (Same arguments in less than 10 seconds)",
        "wait as long as the message says, then retry; the stored tokens were not changed",
    );
    assert_no_token_shown(&run);
}

/// The store's access token replaced by one the sandbox never issued (a
/// token Withings no longer takes), its refresh token still live.
fn given_a_refused_access_token() -> (SandboxProcess, TestEnv) {
    let (sandbox, env) = given_authorised_sandbox();
    let mut store = env.store_json();
    store["tokens"]["access_token"] = json!("sbx_access_no_longer_taken");
    // Issued an hour ago: a set issued a moment ago is not replaced.
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    store["tokens"]["last_refreshed"] = json!(rfc3339(hour_ago));
    env.write_store_bytes(&serde_json::to_vec_pretty(&store).unwrap());
    (sandbox, env)
}

#[test]
fn a_read_whose_token_is_refused_is_sent_again_once_after_one_refresh() {
    let (sandbox, env) = given_a_refused_access_token();
    let before = sandbox.stats();

    let run = env.run(&GETMEAS);

    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, first_persons_weights());
    assert_no_token_shown(&run);
    let after = sandbox.stats();
    assert_eq!(stat_delta(&before, &after, "token_requests"), 1);
    assert_eq!(stat_delta(&before, &after, "data_requests"), 2);
    assert_eq!(stat_delta(&before, &after, "data_refused"), 1);
    assert_ne!(env.store_json()["tokens"]["access_token"], "sbx_access_no_longer_taken");
}

#[test]
fn a_write_whose_token_is_refused_is_not_sent_again() {
    let (sandbox, env) = given_a_refused_access_token();
    let before = sandbox.stats();

    // The sandbox's data routes look at the token before the action.
    let run = env.run(&[
        "api",
        "subscribe",
        "measure",
        "callbackurl=https://example.com/hook",
        "appli=1",
    ]);

    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(serde_json::from_str::<Value>(&run.stdout).unwrap()["status"], 401);
    let message = stderr_error(&run, "INVALID_ACCESS_TOKEN");
    assert!(
        message.starts_with("Withings refused the access token: status 401 ("),
        "{run:?}"
    );
    assert_no_token_shown(&run);
    let after = sandbox.stats();
    assert_eq!(stat_delta(&before, &after, "token_requests"), 0);
    assert_eq!(stat_delta(&before, &after, "data_requests"), 1);
}

#[test]
fn a_parameter_without_a_key_is_a_usage_error() {
    let env = TestEnv::new();

    let run = env.run(&["api", "getmeas", "measure", "=1"]);

    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("`=1` has an empty key: write KEY=VALUE"), "{run:?}");
}
