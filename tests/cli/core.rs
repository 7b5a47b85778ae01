//! End-to-end tests of issue 3: the real binary against wiremock (exact
//! upstream shapes) and the built-in sandbox (flows), loopback only, each run
//! in a cleared environment with its own temporary HOME.

use crate::support::*;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// helpers

/// Checks the stderr pair `error: MESSAGE [CODE]` / `  next: ACTION`.
fn assert_stderr_error(stderr: &str, code: &str, message: &str, action: &str) {
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
fn assert_json_error(run: &Run, exit: i32, code: &str) -> (String, String) {
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

/// A failure in table mode: nothing on stdout, the message pair on stderr.
fn assert_text_error(run: &Run, exit: i32, code: &str) -> String {
    assert_eq!(run.code, exit, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: ") && l.ends_with(&format!(" [{code}]")))
        .unwrap_or_else(|| panic!("no `error: ... [{code}]` line:\n{}", run.stderr));
    let message = line["error: ".len()..line.len() - code.len() - 3].to_owned();
    let next = run.stderr.lines().skip_while(|l| *l != line).nth(1).unwrap_or_default();
    assert!(next.starts_with("  next: ") && next.len() > 8, "{}", run.stderr);
    message
}

/// Nothing a user might paste into an issue may carry a secret.
fn assert_no_secrets(run: &Run, secrets: &[&str]) {
    for secret in secrets.iter().chain(&["test-client-secret-value"]) {
        assert!(!run.stderr.contains(secret), "stderr leaks {secret}:\n{}", run.stderr);
    }
}

/// The form fields of a request wiremock received.
fn form(request: &wiremock::Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body).into_owned().collect()
}

fn time(text: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text.as_str().expect("time string"))
        .expect("rfc3339")
        .with_timezone(&chrono::Utc)
}

// ---------------------------------------------------------------------------
// exit 0: SUCCESS

#[test]
fn refresh_of_an_expired_store_saves_the_rotated_set_and_exits_0() {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body(NEW_ACCESS, NEW_REFRESH, 5000)))
            .expect(1),
    );
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_no_secrets(&out, &[NEW_ACCESS, NEW_REFRESH, OLD_REFRESH]);
    let report = out.json();
    assert_eq!(report["outcome"], "refreshed");
    assert_eq!(report["source"], "store");
    assert_eq!(report["generation"], 2);
    assert_eq!(report["railway"], "skipped");
    assert_eq!(report["userid"], "363");
    let store = env.store_json();
    assert_eq!(store["generation"], 2);
    assert_eq!(store["tokens"]["access_token"], NEW_ACCESS);
    assert_eq!(store["tokens"]["refresh_token"], NEW_REFRESH);
    assert_eq!(store["previous"]["refresh_token"], OLD_REFRESH);
    // expires_at is the response time plus the expires_in Withings sent.
    let lifetime = time(&store["tokens"]["expires_at"]) - time(&store["tokens"]["last_refreshed"]);
    assert_eq!(lifetime, chrono::Duration::seconds(5000));
    assert!(
        (chrono::Utc::now() - time(&store["tokens"]["last_refreshed"]))
            .num_seconds()
            .abs()
            < 30
    );
    assert_eq!(report["expires_at"], store["tokens"]["expires_at"]);
    assert_eq!(report["last_refreshed"], store["tokens"]["last_refreshed"]);
    // The request is the documented form: requesttoken, no redirect_uri.
    let sent = withings.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].headers.get("content-type").unwrap().to_str().unwrap(),
        "application/x-www-form-urlencoded"
    );
    let fields = form(&sent[0]);
    let expected: HashMap<String, String> = [
        ("action", "requesttoken"),
        ("grant_type", "refresh_token"),
        ("client_id", "test-client-id"),
        ("client_secret", "test-client-secret-value"),
        ("refresh_token", OLD_REFRESH),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(fields, expected);
    // Saved privately, with no temp or journal file left behind.
    assert_eq!(file_mode(&env.store_path()), 0o600);
    assert_eq!(env.store_dir_entries(), ["tokens.json", "tokens.json.lock"]);
}

// ---------------------------------------------------------------------------
// exit 2: usage errors are clap's own

#[test]
fn unknown_flag_is_a_usage_error_with_exit_2() {
    let env = TestEnv::new();
    let out = env.run(&["refresh", "--bogus", "--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    // With --json, a reader of stdout gets the error object too (issue 9, item 18).
    let error = &out.json()["error"];
    assert_eq!(error["code"], "USAGE_ERROR", "{out:?}");
    assert_eq!(error["action"], "see `withings-token refresh --help`", "{out:?}");
    assert!(out.stderr.contains("unexpected argument '--bogus'"), "{}", out.stderr);
    assert!(out.stderr.contains("--help"), "{}", out.stderr);
    assert!(!env.store_path().exists());
}

#[test]
fn a_usage_error_in_text_carries_its_code_and_a_next_line_after_clap_s_own_text() {
    let env = TestEnv::new();
    let out = env.run(&["status", "--bogus"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: unexpected argument '--bogus' found [USAGE_ERROR]\n\nUsage: withings-token status [OPTIONS]\n\nFor more information, try '--help'.\n  next: see `withings-token status --help`\n"
    );
    let bare = env.run(&[]);
    assert_eq!(bare.code, 2, "{bare:?}");
    assert!(
        bare.stderr.contains("Usage: withings-token"),
        "clap's help first: {bare:?}"
    );
    assert!(
        bare.stderr
            .ends_with("error: no subcommand given [USAGE_ERROR]\n  next: see `withings-token --help`\n"),
        "{bare:?}"
    );
}

#[test]
fn malformed_duration_is_a_usage_error_with_exit_2() {
    let env = TestEnv::new();
    let out = env.run(&["status", "--buffer", "1y"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("unknown unit `y`"), "{}", out.stderr);
}

#[test]
fn missing_subcommand_is_a_usage_error_with_exit_2() {
    let env = TestEnv::new();
    let out = env.run(&[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("Usage: withings-token"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// exit 3: CONFIGURATION_ERROR

#[test]
fn plain_http_to_a_non_loopback_api_url_is_exit_3_and_sends_nothing() {
    let env = given_expired_store("http://example.com");
    let before = env.store_bytes();
    let out = env.run_fast(&["refresh", "--json"]);
    let (message, action) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
    assert_eq!(
        message,
        "WITHINGS_API_URL is not usable: plain http:// is only allowed for loopback hosts (`http://example.com`)"
    );
    assert_eq!(action, "set WITHINGS_API_URL to an https:// URL");
    assert_eq!(env.store_bytes(), before);
}

#[test]
fn missing_client_secret_is_exit_3_naming_the_variable() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(-60);
    env.set("WITHINGS_CLIENT_ID", "test-client-id")
        .set("WITHINGS_API_URL", withings.uri());
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh"]);
    let message = assert_text_error(&out, 3, "CONFIGURATION_ERROR");
    assert_eq!(message, "WITHINGS_CLIENT_SECRET is not set (refresh needs it)");
    assert!(
        out.stderr
            .contains("  next: set WITHINGS_CLIENT_SECRET in the environment or in the env file")
    );

    let out = env.run_fast(&["refresh", "--json"]);
    let (message, _) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
    assert!(message.contains("WITHINGS_CLIENT_SECRET"), "{message}");

    assert_eq!(env.store_bytes(), before);
    assert!(withings.requests().is_empty());
    withings.verify();
}

#[test]
fn corrupt_store_is_exit_3_left_untouched_and_nothing_is_sent() {
    let withings = silent_withings();
    for corrupt in [&b"{\"version\":1,\"generation\":4,\"tokens\":{\"refresh_tok"[..], b""] {
        let mut env = TestEnv::new();
        env.withings(&withings.uri())
            .set("WITHINGS_REFRESH_TOKEN", "seed-refresh-from-env");
        env.write_store_bytes(corrupt);
        let store = env.store_path().display().to_string();

        for args in [
            &["refresh", "--json"][..],
            &["status", "--json"],
            &["refresh", "--dry-run", "--json"],
        ] {
            let out = env.run_fast(args);
            let (message, action) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
            assert!(
                message.starts_with(&format!("token store {store} is unreadable: ")),
                "{message}"
            );
            assert!(action.contains(&store) && action.contains("left untouched"), "{action}");
            assert_eq!(env.store_bytes(), corrupt, "{args:?} touched the corrupt store");
        }
        assert_eq!(env.store_dir_entries(), ["tokens.json"]);
    }
    assert!(withings.requests().is_empty());
    withings.verify();
}

#[test]
fn refresh_with_no_token_anywhere_is_exit_3() {
    let mut env = TestEnv::new();
    env.withings("http://127.0.0.1:9");
    let out = env.run_fast(&["refresh", "--json"]);
    let (message, action) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
    assert!(message.starts_with("no token to work with"), "{message}");
    assert!(action.contains("`withings-token auth-url`"), "{action}");
}

// ---------------------------------------------------------------------------
// exit 4: refused grants

#[test]
fn refused_refresh_is_exit_4_sends_one_request_and_leaves_the_store_byte_identical() {
    let withings = withings_answering(refused_refresh()).times(1);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh", "--json", "--retries", "3"]);

    let (message, action) = assert_json_error(&out, 4, "INVALID_REFRESH_TOKEN");
    assert_eq!(
        message,
        "Withings refused the refresh token: status 503: Invalid Params: invalid refresh_token"
    );
    assert!(
        action.starts_with("re-authorise: run `withings-token auth-url`"),
        "{action}"
    );
    assert!(action.contains("`withings-token exchange"), "{action}");
    assert_no_secrets(&out, &[OLD_REFRESH, OLD_ACCESS]);
    assert_eq!(env.store_bytes(), before);
    assert_eq!(env.store_dir_entries(), ["tokens.json", "tokens.json.lock"]);
    let sent = withings.requests();
    assert_eq!(sent.len(), 1, "a refused grant must not be retried");
    assert_eq!(form(&sent[0])["refresh_token"], OLD_REFRESH);
    withings.verify();
}

#[test]
fn auth_url_then_exchange_of_the_redirect_url_stores_the_first_set() {
    let (sandbox, env) = given_sandbox();

    let Consent { auth, redirect } = sandbox.consent(&env);
    let state = auth["state"].as_str().unwrap();
    assert_eq!(state.len(), 32, "random state: {state}");
    assert_eq!(auth["redirect_uri"], sandbox.env["WITHINGS_REDIRECT_URI"]);
    assert_eq!(auth["scope"], "user.info,user.metrics,user.activity");
    let url = url::Url::parse(auth["authorization_url"].as_str().unwrap()).unwrap();
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], sandbox.env["WITHINGS_CLIENT_ID"]);
    assert_eq!(query["state"], state);
    assert_eq!(env.store_json()["pending_auth"]["state"], state);
    assert!(redirect.contains(&format!("state={state}")), "{redirect}");

    let out = env.run(&["exchange", &redirect, "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["outcome"], "exchanged");
    assert_eq!(report["userid"], "31415926");
    assert_eq!(report["railway"], "skipped");
    let store = env.store_json();
    let stored_refresh = store["tokens"]["refresh_token"].as_str().unwrap();
    assert!(stored_refresh.starts_with("sbx_refresh_"), "{store}");
    assert_eq!(
        report["refresh_token"],
        format!("token_*****{}", &stored_refresh[stored_refresh.len() - 3..])
    );
    assert_no_secrets(
        &out,
        &[stored_refresh, store["tokens"]["access_token"].as_str().unwrap()],
    );
    let stats = sandbox.stats();
    assert_eq!(stats["token_requests"], 1);
    assert_eq!(stats["tokens_issued"], 1);
    // A fresh store is private: directory 0700, file 0600.
    assert_eq!(file_mode(&env.store_path()), 0o600);
    assert_eq!(file_mode(env.store_path().parent().unwrap()), 0o700);

    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let status = out.json();
    assert_eq!(status["source"], "store");
    assert_eq!(status["token_configured"], true);
    assert_eq!(status["should_refresh"], false);
}

#[test]
fn exchange_of_a_url_with_a_foreign_state_is_exit_4_and_sends_nothing() {
    let (sandbox, env) = given_sandbox();
    let Consent { auth, redirect } = sandbox.consent(&env);
    let state = auth["state"].as_str().unwrap();
    let foreign = redirect.replace(&format!("state={state}"), "state=someone-elses-state");
    assert_ne!(foreign, redirect);
    let before = env.store_bytes();

    let out = env.run(&["exchange", &foreign, "--no-railway", "--json"]);

    let (message, action) = assert_json_error(&out, 4, "INVALID_STATE");
    assert!(message.contains("does not match"), "{message}");
    assert!(message.contains("nothing was sent"), "{message}");
    assert!(action.contains("`withings-token auth-url`"), "{action}");
    assert_eq!(sandbox.stats()["token_requests"], 0);
    assert_eq!(env.store_bytes(), before);

    // The genuine redirect still works: the code was never spent.
    let out = env.run(&["exchange", &redirect, "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sandbox.stats()["tokens_issued"], 1);
}

/// Withings on wiremock answering one code exchange, and a consent issued
/// by `auth-url`: the redirect URL that carries `code`.
fn given_issued_consent(withings: &Upstream, code: &str) -> (TestEnv, String) {
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let auth = env.run(&["auth-url", "--json"]);
    assert_eq!(auth.code, 0, "{auth:?}");
    let state = auth.json()["state"].as_str().expect("state").to_owned();
    (env, format!("https://example.com/callback?code={code}&state={state}"))
}

/// The one request Withings got: it traded exactly `code`.
fn assert_exchanged_once(withings: &Upstream, code: &str) {
    let sent = withings.requests();
    assert_eq!(sent.len(), 1, "one exchange: {sent:?}");
    let form = form(&sent[0]);
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], code, "never `-`");
}

fn assert_store_holds_the_new_set(env: &TestEnv) {
    let tokens = &env.store_json()["tokens"];
    assert_eq!(tokens["access_token"], NEW_ACCESS);
    assert_eq!(tokens["refresh_token"], NEW_REFRESH);
    assert_eq!(tokens["userid"], "363");
    assert_eq!(tokens["scope"], "user.info,user.metrics");
}

#[test]
fn exchange_dash_reads_the_redirect_url_from_stdin_and_never_sends_a_dash() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let (env, redirect) = given_issued_consent(&withings, "stdin-code-42");

    let out = Run::of(
        env.cmd()
            .args(["exchange", "-", "--no-railway", "--json"])
            .write_stdin(format!("  {redirect}  \nsecond line ignored\n")),
    );

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["outcome"], "exchanged");
    assert_exchanged_once(&withings, "stdin-code-42");
    assert_store_holds_the_new_set(&env);
    assert!(!out.stderr.contains("stdin-code-42"), "{out:?}");
    withings.verify();
}

#[test]
fn exchange_without_an_argument_reads_a_piped_code() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());

    let out = Run::of(
        env.cmd()
            .args(["exchange", "--no-railway", "--json"])
            .write_stdin("piped-code-7\n"),
    );

    assert_eq!(out.code, 0, "{out:?}");
    assert_exchanged_once(&withings, "piped-code-7");
    assert_store_holds_the_new_set(&env);
    withings.verify();
}

#[test]
fn exchange_dash_with_an_empty_stdin_is_exit_3_and_sends_nothing() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(0);
    let (env, _redirect) = given_issued_consent(&withings, "unused");
    let before = env.store_bytes();

    for args in [&["exchange", "-", "--json"][..], &["exchange", "--json"]] {
        let out = Run::of(env.cmd().args(args).write_stdin("\n"));
        let (message, action) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
        assert_eq!(
            message, "stdin held no authorization code or redirect URL (its first line is empty)",
            "{args:?}"
        );
        assert!(action.contains("| withings-token exchange -`"), "{action}");
    }
    assert!(withings.requests().is_empty(), "nothing was sent");
    assert_eq!(env.store_bytes(), before);
    withings.verify();
}

#[test]
fn exchange_of_a_reused_code_is_exit_4_invalid_code() {
    let (sandbox, env) = given_sandbox();
    let redirect = sandbox.authorise(&env);
    let before = env.store_bytes();
    let code = url::Url::parse(&redirect)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    // The same redirect URL pasted twice, then the bare code.
    for (i, input) in [redirect.as_str(), code.as_str()].into_iter().enumerate() {
        let out = env.run_fast(&["exchange", input, "--no-railway", "--json"]);
        let (message, action) = assert_json_error(&out, 4, "INVALID_CODE");
        assert_eq!(
            message,
            "Withings refused the authorization code: status 503: Invalid Params: invalid code"
        );
        assert!(
            action.starts_with("re-authorise: run `withings-token auth-url`"),
            "{action}"
        );
        assert_eq!(env.store_bytes(), before, "a refused code changed the store");
        let stats = sandbox.stats();
        assert_eq!(
            stats["token_requests"],
            2 + i,
            "a refused code must not be retried: {stats}"
        );
        assert_eq!(stats["refused"], 1 + i);
    }
}

// ---------------------------------------------------------------------------
// exit 5: transient faults, retried

/// `fault` is answered twice, then a token set: the refresh succeeds on the
/// third attempt and stores the new set.
fn fault_is_retried_then_succeeds(fault: ResponseTemplate) -> Run {
    let withings = Upstream::start();
    withings.mount(
        token_request()
            .respond_with(fault)
            .up_to_n_times(2)
            .with_priority(1)
            .expect(2),
    );
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, NEW_REFRESH))
            .with_priority(2)
            .expect(1),
    );
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--json", "--retries", "3"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["outcome"], "refreshed");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(env.store_json()["generation"], 2);
    assert!(out.stderr.contains("Withings: attempt 1/4 failed"), "{}", out.stderr);
    assert!(out.stderr.contains("Withings: attempt 2/4 failed"), "{}", out.stderr);
    assert!(!out.stderr.contains("attempt 3/4"), "{}", out.stderr);
    assert_no_secrets(&out, &[OLD_REFRESH, NEW_REFRESH, NEW_ACCESS]);
    let sent = withings.requests();
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|r| form(r)["refresh_token"] == OLD_REFRESH));
    withings.verify();
    out
}

/// `fault` every time: after `--retries 2` (3 attempts) the run ends with
/// exit 5 and `code`, and the store is byte-for-byte what it was.
fn fault_exhausts_the_retries(fault: ResponseTemplate, code: &str) -> String {
    let withings = withings_answering(fault).times(3);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh", "--json", "--retries", "2"]);

    let (message, action) = assert_json_error(&out, 5, code);
    assert_eq!(
        action,
        "retry later (after 30 s or more); the stored tokens were not changed"
    );
    assert_eq!(env.store_bytes(), before);
    assert_eq!(env.store_dir_entries(), ["tokens.json", "tokens.json.lock"]);
    assert_eq!(withings.requests().len(), 3);
    withings.verify();
    message
}

fn html_502() -> ResponseTemplate {
    ResponseTemplate::new(502).set_body_raw("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
}

const TRUNCATED: &str = r#"{"status":0,"body":{"access_token":"abc","refre"#;

fn truncated_json() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(TRUNCATED, "application/json")
}

fn status_522() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": 522, "body": {}, "error": "Timeout"}))
}

fn slow_success() -> ResponseTemplate {
    new_tokens("late-access-000", "late-refresh-000").set_delay(Duration::from_secs(3))
}

#[test]
fn http_500_is_retried_then_succeeds() {
    fault_is_retried_then_succeeds(ResponseTemplate::new(500));
}

#[test]
fn http_500_every_time_ends_in_exit_5_upstream_error() {
    let message = fault_exhausts_the_retries(ResponseTemplate::new(500), "UPSTREAM_ERROR");
    assert_eq!(
        message,
        "Withings gave no usable answer after 3 attempt(s): HTTP 500 with an empty body instead of the expected JSON"
    );
}

#[test]
fn html_502_is_retried_then_succeeds() {
    fault_is_retried_then_succeeds(html_502());
}

#[test]
fn html_502_every_time_ends_in_exit_5_upstream_error() {
    let message = fault_exhausts_the_retries(html_502(), "UPSTREAM_ERROR");
    assert_eq!(
        message,
        "Withings gave no usable answer after 3 attempt(s): HTTP 502 with an HTML page instead of the expected JSON"
    );
}

#[test]
fn truncated_json_is_retried_then_succeeds() {
    fault_is_retried_then_succeeds(truncated_json());
}

#[test]
fn truncated_json_every_time_ends_in_exit_5_upstream_error() {
    let message = fault_exhausts_the_retries(truncated_json(), "UPSTREAM_ERROR");
    assert_eq!(
        message,
        format!(
            "Withings gave no usable answer after 3 attempt(s): HTTP 200 with {} bytes of application/json instead of the expected JSON",
            TRUNCATED.len()
        )
    );
}

#[test]
fn empty_body_is_retried_then_succeeds() {
    fault_is_retried_then_succeeds(ResponseTemplate::new(200));
}

#[test]
fn empty_body_every_time_ends_in_exit_5_upstream_error() {
    let message = fault_exhausts_the_retries(ResponseTemplate::new(200), "UPSTREAM_ERROR");
    assert_eq!(
        message,
        "Withings gave no usable answer after 3 attempt(s): HTTP 200 with an empty body instead of the expected JSON"
    );
}

#[test]
fn withings_status_522_is_retried_then_succeeds() {
    fault_is_retried_then_succeeds(status_522());
}

#[test]
fn withings_status_522_every_time_ends_in_exit_5_upstream_error() {
    let message = fault_exhausts_the_retries(status_522(), "UPSTREAM_ERROR");
    assert_eq!(
        message,
        "Withings gave no usable answer after 3 attempt(s): Withings status 522 (Timeout)"
    );
}

#[test]
fn status_0_without_tokens_is_never_stored() {
    // withings-sync #256: a body without tokens must not overwrite the store.
    let message = fault_exhausts_the_retries(
        ResponseTemplate::new(200).set_body_json(json!({"status": 0, "body": {"access_token": null}})),
        "UPSTREAM_ERROR",
    );
    assert!(message.ends_with("status 0 without a complete token set"), "{message}");
}

#[test]
fn timeout_is_retried_then_succeeds() {
    let out = fault_is_retried_then_succeeds(slow_success());
    assert!(out.stderr.contains("timed out after 300 ms"), "{}", out.stderr);
}

#[test]
fn timeout_every_time_ends_in_exit_5_network_error() {
    let started = Instant::now();
    let message = fault_exhausts_the_retries(slow_success(), "NETWORK_ERROR");
    assert!(
        message.starts_with("could not reach Withings after 3 attempt(s): timed out after 300 ms"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

#[test]
fn closed_port_ends_in_exit_5_network_error_after_the_retries() {
    let env = given_expired_store(&closed_port_url());
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh", "--json", "--retries", "2"]);

    let (message, action) = assert_json_error(&out, 5, "NETWORK_ERROR");
    assert!(
        message.starts_with("could not reach Withings after 3 attempt(s): connection failed"),
        "{message}"
    );
    assert_eq!(
        action,
        "retry later (after 30 s or more); the stored tokens were not changed"
    );
    assert!(out.stderr.contains("attempt 2/3 failed"), "{}", out.stderr);
    assert_eq!(env.store_bytes(), before);
}

fn rate_limited(wait_seconds: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": 601,
        "body": {"wait_seconds": wait_seconds},
        "error": "Same arguments in less than 10 seconds",
    }))
}

#[test]
fn status_601_waits_the_asked_seconds_then_succeeds() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    withings.mount(
        token_request()
            .respond_with(rate_limited(1))
            .up_to_n_times(1)
            .with_priority(1),
    );
    let env = given_expired_store(&withings.uri());

    let started = Instant::now();
    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "did not wait: {:?}",
        started.elapsed()
    );
    assert!(out.stderr.contains("retrying in 1 s"), "{}", out.stderr);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(withings.requests().len(), 2);
    withings.verify();
}

#[test]
fn status_601_every_time_ends_in_exit_5_rate_limited() {
    let withings = withings_answering(rate_limited(1)).times(2);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh", "--json", "--retries", "1"]);

    let (message, action) = assert_json_error(&out, 5, "RATE_LIMITED");
    assert_eq!(
        message,
        "Withings is rate limiting this client: Withings status 601 (Same arguments in less than 10 seconds) (still limited after 2 attempt(s))"
    );
    assert_eq!(
        action,
        "wait as long as the message says, then retry; the stored tokens were not changed"
    );
    assert!(action.ends_with("the stored tokens were not changed"), "{action}");
    assert_eq!(env.store_bytes(), before);
    withings.verify();
}

#[test]
fn status_601_asking_for_a_long_wait_stops_at_once_with_rate_limited() {
    let withings = withings_answering(rate_limited(188)).times(1);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let started = Instant::now();
    let out = env.run_fast(&["refresh", "--json", "--retries", "3"]);

    let (message, _) = assert_json_error(&out, 5, "RATE_LIMITED");
    assert!(message.ends_with("asked to wait 188 s"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(env.store_bytes(), before);
    assert_eq!(withings.requests().len(), 1);
    withings.verify();
}

#[test]
fn sandbox_faults_are_retried_in_a_real_flow() {
    let (sandbox, env) = given_authorised_sandbox();
    let first = env.stored_refresh_token();
    sandbox.fault(json!({"kind": "http500", "count": 1}));
    sandbox.fault(json!({"kind": "html502", "count": 1}));
    sandbox.fault(json!({"kind": "empty", "count": 1}));

    let out = env.run_fast(&["refresh", "--no-railway", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_ne!(env.stored_refresh_token(), first);
    let stats = sandbox.stats();
    assert_eq!(stats["token_requests"], 5, "{stats}");
    assert_eq!(stats["tokens_issued"], 2, "{stats}");

    // More faults than retries: exit 5, and the set saved above is intact.
    let before = env.store_bytes();
    sandbox.fault(json!({"kind": "truncated", "count": 4}));
    let out = env.run_fast(&["refresh", "--no-railway", "--json", "--retries", "3"]);
    assert_json_error(&out, 5, "UPSTREAM_ERROR");
    assert_eq!(env.store_bytes(), before);
    // The unchanged store still refreshes once Withings recovers.
    let out = env.run_fast(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
}

// ---------------------------------------------------------------------------
// exit 7: REFRESH_DUE

#[test]
fn status_check_is_exit_7_when_a_refresh_is_due() {
    let env = given_store_expiring_in(30 * 60);

    let out = env.run(&["status", "--check"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stdout.contains("refresh due"), "{}", out.stdout);
    let expires_at = env.store_json()["tokens"]["expires_at"].as_str().unwrap().to_owned();
    assert_stderr_error(
        &out.stderr,
        "REFRESH_DUE",
        &format!("a refresh is due: the access token expires at {expires_at}"),
        "run `withings-token refresh`",
    );

    // With --json, stdout is the one status report (it says due); the exit
    // code and stderr carry the error, so `jq` sees a single document.
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 7, "{out:?}");
    let docs = out.json_docs();
    assert_eq!(docs.len(), 1, "{}", out.stdout);
    assert_eq!(docs[0]["should_refresh"], true);
    assert_eq!(docs[0]["refresh_buffer_minutes"], 60);
    assert_stderr_error(
        &out.stderr,
        "REFRESH_DUE",
        &format!("a refresh is due: the access token expires at {expires_at}"),
        "run `withings-token refresh`",
    );

    // Not due with a shorter buffer; due again once expired.
    let out = env.run(&["status", "--check", "--buffer", "10m"]);
    assert_eq!(out.code, 0, "{out:?}");
    env.seed_store(OLD_ACCESS, OLD_REFRESH, -1);
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.json()["should_refresh"], true);
    assert_eq!(out.json()["expires_in_hours"], 0.0);
    assert!(out.stderr.contains("a refresh is due"), "{}", out.stderr);
}

#[test]
fn status_check_is_exit_0_on_a_fresh_set_and_reports_it() {
    let env = given_store_expiring_in(2 * 3600 + 30 * 60);
    std::fs::set_permissions(env.store_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.run(&["status", "--check", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, "");
    let status = out.json();
    let store = env.store_json();
    assert_eq!(status["token_configured"], true);
    assert_eq!(status["source"], "store");
    assert_eq!(status["should_refresh"], false);
    assert_eq!(status["expires_at"], store["tokens"]["expires_at"]);
    assert_eq!(status["last_refreshed"], store["tokens"]["last_refreshed"]);
    assert_eq!(status["expires_in_hours"], 2.5);
    assert_eq!(status["refresh_buffer_minutes"], 60);
    let recommended = time(&store["tokens"]["expires_at"]) - chrono::Duration::hours(1);
    assert_eq!(status["next_refresh_recommended"], rfc3339(recommended));
    assert_eq!(status["userid"], "363");
    assert_eq!(status["scope"], "user.info,user.metrics");
}

#[test]
fn status_check_with_no_token_is_exit_3() {
    let env = TestEnv::new();
    let out = env.run(&["status", "--check", "--json"]);
    let (message, _) = assert_json_error(&out, 3, "CONFIGURATION_ERROR");
    assert!(message.starts_with("no token to work with"), "{message}");
    assert_eq!(out.json_docs().len(), 1, "{}", out.stdout);
}

// ---------------------------------------------------------------------------
// token sources and rotation

#[test]
fn second_refresh_uses_the_rotated_token_while_the_environment_holds_the_dead_one() {
    // The seed is accepted once; afterwards it is dead, as at Withings.
    let withings = Upstream::start();
    withings.mount(
        refresh_of("seed-original-111")
            .respond_with(new_tokens("rotated-access-aaa", "rotated-refresh-222"))
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1),
    );
    withings.mount(
        refresh_of("seed-original-111")
            .respond_with(refused_refresh())
            .with_priority(2)
            .expect(0),
    );
    withings.mount(
        refresh_of("rotated-refresh-222")
            .respond_with(new_tokens("third-access-bbb", "third-refresh-333"))
            .expect(1),
    );
    let now = chrono::Utc::now();
    let mut env = TestEnv::new();
    env.withings(&withings.uri())
        .set("WITHINGS_ACCESS_TOKEN", "seed-access-000")
        .set("WITHINGS_REFRESH_TOKEN", "seed-original-111")
        .set("WITHINGS_TOKEN_EXPIRES_AT", rfc3339(now - chrono::Duration::minutes(5)))
        .set(
            "WITHINGS_TOKEN_LAST_REFRESHED",
            rfc3339(now - chrono::Duration::minutes(185)),
        );

    let out = env.run_fast(&["refresh", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["source"], "env");
    assert_eq!(env.stored_refresh_token(), "rotated-refresh-222");

    // Same environment, still holding the dead seed.
    let out = env.run_fast(&["refresh", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["source"], "store");
    assert_eq!(report["refresh_token"], "token_*****333");
    assert_eq!(env.stored_refresh_token(), "third-refresh-333");
    assert_eq!(env.store_json()["generation"], 2);

    let sent: Vec<String> = withings
        .requests()
        .iter()
        .map(|r| form(r)["refresh_token"].clone())
        .collect();
    assert_eq!(sent, ["seed-original-111", "rotated-refresh-222"]);
    withings.verify();

    let out = env.run(&["status", "--json"]);
    assert_eq!(out.json()["source"], "store");
}

#[test]
fn sandbox_second_refresh_uses_the_stored_token_not_the_environment() {
    let (sandbox, mut env) = given_authorised_sandbox();
    let seed = env.stored_refresh_token();
    // The user copies the first refresh token into the environment, as the seed guide says.
    env.set("WITHINGS_REFRESH_TOKEN", seed.clone());
    let out = env.run_fast(&["refresh", "--no-railway"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rotated = env.stored_refresh_token();
    assert_ne!(rotated, seed);
    // The sandbox now refuses `seed`; only the stored token can work.
    let out = env.run_fast(&["refresh", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["source"], "store");
    assert_ne!(env.stored_refresh_token(), rotated);
    let stats = sandbox.stats();
    assert_eq!(stats["refused"], 0, "{stats}");
    assert_eq!(stats["tokens_issued"], 3, "{stats}");
}

// ---------------------------------------------------------------------------
// the env file

#[test]
fn env_file_token_keys_are_rewritten_in_place_keeping_comments_order_and_other_keys() {
    let withings = withings_rotating("env-refresh-old");
    let env = TestEnv::new();
    let head = format!(
        "# Withings app (developer.withings.com)\n\
         WITHINGS_CLIENT_ID=test-client-id\n\
         export WITHINGS_CLIENT_SECRET=\"test-client-secret-value\"\n\
         WITHINGS_API_URL={}\n\
         \n\
         # tokens: rotated by withings-token\n",
        withings.uri()
    );
    let tail = "OTHER_SERVICE_KEY='keep me, exactly'\n\
                # a trailing comment\n\
                DATABASE_URL=postgres://u:p@localhost/db\n";
    let original = format!(
        "{head}WITHINGS_ACCESS_TOKEN=env-access-old\n\
         WITHINGS_REFRESH_TOKEN=env-refresh-old\n\
         # between the token keys\n\
         WITHINGS_TOKEN_EXPIRES_AT=2020-01-01T03:00:00Z\n\
         WITHINGS_TOKEN_LAST_REFRESHED=2020-01-01T00:00:00Z\n\
         {tail}"
    );
    let dot_env = env.write_env_file(&original);

    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["source"], "env");
    let tokens = &env.store_json()["tokens"];
    let expected = format!(
        "{head}WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\n\
         WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n\
         # between the token keys\n\
         WITHINGS_TOKEN_EXPIRES_AT={}\n\
         WITHINGS_TOKEN_LAST_REFRESHED={}\n\
         {tail}",
        rfc3339(time(&tokens["expires_at"])),
        rfc3339(time(&tokens["last_refreshed"])),
    );
    assert_eq!(std::fs::read_to_string(&dot_env).unwrap(), expected);
    assert_eq!(
        std::fs::canonicalize(report["env_file_updated"].as_str().unwrap()).unwrap(),
        std::fs::canonicalize(&dot_env).unwrap()
    );
    let mut files: Vec<String> = std::fs::read_dir(env.work_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, [".env"], "no temp file may be left beside .env");
    withings.verify();
}

#[test]
fn no_env_file_update_leaves_the_env_file_alone() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let original = "# mine\nWITHINGS_REFRESH_TOKEN=env-refresh-old\nOTHER=1\n";
    let dot_env = env.write_env_file(original);

    let out = env.run_fast(&["refresh", "--no-env-file-update", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["env_file_updated"], Value::Null);
    assert_eq!(std::fs::read_to_string(&dot_env).unwrap(), original);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

// ---------------------------------------------------------------------------
// output formats

#[test]
fn output_env_prints_exactly_the_four_lines() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(2);
    let env = given_expired_store(&withings.uri());

    // Both the scripts' form and the global-first form.
    for args in [["refresh", "--output-env"], ["--output-env", "refresh"]] {
        let out = env.run_fast(&args);
        assert_eq!(out.code, 0, "{out:?}");
        let tokens = &env.store_json()["tokens"];
        let expected = format!(
            "WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\n\
             WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n\
             WITHINGS_TOKEN_EXPIRES_AT={}\n\
             WITHINGS_TOKEN_LAST_REFRESHED={}\n",
            rfc3339(time(&tokens["expires_at"])),
            rfc3339(time(&tokens["last_refreshed"])),
        );
        assert_eq!(out.stdout, expected);
        assert_eq!(
            out.stdout,
            format!(
                "WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\nWITHINGS_REFRESH_TOKEN={NEW_REFRESH}\nWITHINGS_TOKEN_EXPIRES_AT={}\nWITHINGS_TOKEN_LAST_REFRESHED={}\n",
                tokens["expires_at"].as_str().unwrap(),
                tokens["last_refreshed"].as_str().unwrap(),
            )
        );
        assert_no_secrets(&out, &[NEW_ACCESS, NEW_REFRESH]);
    }
    withings.verify();
}

#[test]
fn json_masks_tokens_to_their_last_three_characters() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["access_token"], "token_*****123");
    assert_eq!(report["refresh_token"], "token_*****xyz");
    for secret in [NEW_ACCESS, NEW_REFRESH, OLD_REFRESH, "test-client-secret-value"] {
        assert!(!out.stdout.contains(secret), "stdout leaks {secret}");
    }
    assert_no_secrets(&out, &[NEW_ACCESS, NEW_REFRESH]);

    // The table masks them too.
    let out = env.run_fast(&["refresh", "--if-needed", "--buffer", "1m"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("token_*****xyz"), "{}", out.stdout);
    assert!(!out.stdout.contains(NEW_REFRESH), "{}", out.stdout);
    withings.verify();
}

#[test]
fn reveal_shows_the_tokens_in_json() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--json", "--reveal"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["access_token"], NEW_ACCESS);
    assert_eq!(report["refresh_token"], NEW_REFRESH);
    assert_no_secrets(&out, &[NEW_ACCESS, NEW_REFRESH]);
    withings.verify();
}

// ---------------------------------------------------------------------------
// refresh --dry-run and --if-needed

#[test]
fn dry_run_sends_nothing_and_writes_nothing() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let dot_env = env.write_env_file("WITHINGS_REFRESH_TOKEN=env-refresh-old\n");
    let before = env.store_bytes();

    let out = env.run_fast(&["refresh", "--dry-run", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["would_refresh"], true);
    assert_eq!(report["source"], "store");
    assert_eq!(report["store"], env.store_path().display().to_string());
    assert_eq!(
        report["env_file"],
        dot_env.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(report["railway"], Value::Null);
    assert_eq!(report["expires_at"], env.store_json()["tokens"]["expires_at"]);

    let out = env.run_fast(&["refresh", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("nothing was sent or written"), "{}", out.stdout);

    assert_eq!(env.store_bytes(), before);
    assert_eq!(env.store_dir_entries(), ["tokens.json"]);
    assert_eq!(
        std::fs::read_to_string(&dot_env).unwrap(),
        "WITHINGS_REFRESH_TOKEN=env-refresh-old\n"
    );
    assert!(withings.requests().is_empty());
    withings.verify();
}

#[test]
fn if_needed_on_a_fresh_set_exits_0_without_a_request() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(2 * 3600 + 30 * 60);
    env.withings(&withings.uri());
    let before = env.store_bytes();
    let tokens = env.store_json()["tokens"].clone();
    let refresh_at = rfc3339(time(&tokens["expires_at"]) - chrono::Duration::hours(1));
    let why = format!(
        "not refreshed: the token expires at {} and is due from {refresh_at}",
        tokens["expires_at"].as_str().unwrap()
    );

    let out = env.run_fast(&["refresh", "--if-needed", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["outcome"], "not_due");
    assert_eq!(report["message"], why.as_str());
    assert_eq!(report["generation"], 1);
    assert_eq!(report["refresh_token"], "token_*****abc");

    let out = env.run_fast(&["refresh", "--if-needed"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("not due"), "{}", out.stdout);
    assert!(out.stderr.contains(&why), "{}", out.stderr);

    // With --output-env the unchanged set is printed for the pipeline.
    let out = env.run_fast(&["refresh", "--if-needed", "--output-env"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(&format!(
            "WITHINGS_ACCESS_TOKEN={OLD_ACCESS}\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"
        )),
        "{}",
        out.stdout
    );

    assert_eq!(env.store_bytes(), before);
    assert!(withings.requests().is_empty());
    withings.verify();
}

// ---------------------------------------------------------------------------
// demo

#[test]
fn demo_exits_0_with_an_empty_environment() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // A hostile .env in the working directory must not be read.
    std::fs::write(
        work.path().join(".env"),
        "WITHINGS_API_URL=http://example.com\nWITHINGS_REFRESH_TOKEN=not-this-one\n",
    )
    .unwrap();
    let out = Run::of(
        assert_cmd::Command::new(BIN)
            .arg("demo")
            .env_clear()
            .env("HOME", home.path())
            .current_dir(work.path())
            .timeout(Duration::from_secs(60)),
    );

    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("demo finished"), "{}", out.stdout);
    // A run that shows everything working warns of nothing, and tells the
    // person to do nothing it does itself.
    for misleading in ["stale copy", "is behind", "Open the URL above"] {
        assert!(!out.stdout.contains(misleading), "{misleading}:\n{}", out.stdout);
        assert!(!out.stderr.contains(misleading), "{misleading}:\n{}", out.stderr);
    }
    assert!(
        out.stdout
            .contains("(the demo plays the browser: it opened the URL above in the sandbox"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("│ railway        ┆ updated").count(),
        4,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("step 8/8: withings-token railway-sync --dry-run"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("sbx_refresh_"),
        "demo must mask tokens:\n{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        0,
        "demo wrote into HOME"
    );
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 1);
}

/// A newer-dated but dead token in the environment must not hide the
/// store's working one: it is refused, the store's token is tried once.
#[test]
fn refused_environment_token_falls_back_to_the_stores_own() {
    let (sandbox, mut env) = given_authorised_sandbox();
    let stored = env.stored_refresh_token();
    env.set("WITHINGS_REFRESH_TOKEN", "dead-token-from-elsewhere").set(
        "WITHINGS_TOKEN_LAST_REFRESHED",
        rfc3339(chrono::Utc::now() + chrono::Duration::minutes(5)),
    );

    let out = env.run(&["refresh", "--no-railway", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("recovered with the store's refresh token"),
        "{}",
        out.stderr
    );
    assert_ne!(env.stored_refresh_token(), stored);
    assert_eq!(env.store_json()["previous"]["refresh_token"], stored);
    assert_eq!(sandbox.stats()["refused"], 1);
}

/// Issue 13, item 7: `--region us` (or WITHINGS_REGION) picks both US hosts.
#[test]
fn region_us_picks_the_us_hosts() {
    let mut env = TestEnv::new();
    env.set("WITHINGS_CLIENT_ID", CLIENT_ID)
        .set("WITHINGS_REDIRECT_URI", "https://example.com/callback");
    let out = env.run(&["auth-url", "--json", "--region", "us"]);
    assert_eq!(out.code, 0, "{out:?}");
    let url = out.json()["authorization_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("https://account.us.withingsmed.com/oauth2_user/authorize2?"),
        "{url}"
    );
    env.set("WITHINGS_REGION", "us");
    let out = env.run(&["auth-url", "--json"]);
    assert!(
        out.json()["authorization_url"]
            .as_str()
            .unwrap()
            .starts_with("https://account.us.withingsmed.com/")
    );
}

// ---------------------------------------------------------------------------
// words that say what happened (issue 18, item 16)

#[test]
fn auth_url_s_next_step_carries_the_env_file_store_and_region_flags_given() {
    let dir = tempfile::tempdir().unwrap();
    let env = TestEnv::new();
    let env_file = dir.path().join("my app.env");
    std::fs::write(
        &env_file,
        "WITHINGS_CLIENT_ID=id\nWITHINGS_REDIRECT_URI=https://example.com/callback\n",
    )
    .unwrap();
    let store = dir.path().join("tokens.json");
    let (env_file, store) = (env_file.to_str().unwrap(), store.to_str().unwrap());

    let out = env.run(&["--env-file", env_file, "auth-url", "--store", store, "--region", "us"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "  withings-token --env-file '{env_file}' --store {store} --region us exchange '<the URL you were redirected to>'\n"
        )),
        "{out:?}"
    );
    // Without flags, the plain command.
    let mut plain = TestEnv::new();
    plain.withings("https://wbsapi.withings.net");
    let out = plain.run(&["auth-url"]);
    assert!(
        out.stderr
            .contains("\n  withings-token exchange '<the URL you were redirected to>'\n"),
        "{out:?}"
    );
}

#[test]
fn a_refresh_says_why_the_env_file_and_railway_were_not_updated() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(3);
    let env = given_expired_store(&withings.uri());
    env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));

    let declined = env.run_fast(&["refresh", "--no-env-file-update"]);
    assert_eq!(declined.code, 0, "{declined:?}");
    assert!(
        declined
            .stdout
            .contains("│ env file       ┆ not updated: skipped by --no-env-file-update"),
        "{}",
        declined.stdout
    );
    assert!(
        declined
            .stdout
            .contains("│ railway        ┆ skipped: Railway is not configured"),
        "{}",
        declined.stdout
    );
    let none = env.run_fast(&["refresh", "--no-env-file", "--json"]);
    assert_eq!(none.code, 0, "{none:?}");
    let report = none.json();
    assert_eq!(report["env_file"], "skipped");
    assert_eq!(
        report["env_file_reason"],
        "no env file was read (none given, no ./.env, or --no-env-file)"
    );
    assert_eq!(report["railway_reason"], "Railway is not configured");
    env.write_env_file("APP=1\n");
    let no_keys = env.run_fast(&["refresh", "--json"]);
    assert_eq!(
        no_keys.json()["env_file_reason"],
        "the env file read holds no WITHINGS_* token keys"
    );
    withings.verify();
}

#[test]
fn refresh_and_status_give_the_set_generation_one_name_and_the_same_number() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());
    env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));

    let refreshed = env.run_fast(&["refresh", "--json"]);
    assert_eq!(refreshed.code, 0, "{refreshed:?}");
    let status = env.run(&["status", "--json"]).json();
    let table = env.run(&["status"]).stdout;

    let set = refreshed.json()["set_generation"].as_u64().unwrap();
    assert_eq!(set, 2, "the seeded store was at 1");
    assert_eq!(refreshed.json()["generation"], set, "the old key keeps its meaning");
    assert_eq!(status["set_generation"], set);
    // The env file's copy record was one more save of the store.
    assert_eq!(status["store_generation"], set + 1);
    assert_eq!(status["generation"], set + 1, "the old key keeps its meaning");
    assert!(table.contains(&format!("│ set generation         ┆ {set} ")), "{table}");
    assert!(!table.contains("store generation"), "one number for people: {table}");
    withings.verify();
}
