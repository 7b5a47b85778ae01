//! What Withings answers when it does not simply answer: transient faults
//! (5xx, HTML, truncated or empty bodies, timeouts, a closed port) are
//! retried and end in exit 5, status 601 waits as asked, and odd or hostile
//! answers (a success in an odd shape, an oversized body, a lifetime of
//! years, error texts quoting secrets or carrying control characters) are
//! handled without losing a rotation or leaking a secret.

use crate::support::*;

use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// transient faults, retried

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

#[test]
fn http_500_is_retried_then_succeeds() {
    fault_is_retried_then_succeeds(ResponseTemplate::new(500));
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
    assert_eq!(env.store_dir_entries(), STORE_WITH_ALERT_STATE);
    assert_eq!(withings.requests().len(), 3);
    withings.verify();
    message
}

#[test]
fn http_500_every_time_ends_in_exit_5_upstream_error() {
    let message = fault_exhausts_the_retries(ResponseTemplate::new(500), "UPSTREAM_ERROR");
    assert_eq!(
        message,
        "Withings gave no usable answer after 3 attempt(s): HTTP 500 with an empty body instead of the expected JSON"
    );
}

fn html_502() -> ResponseTemplate {
    ResponseTemplate::new(502).set_body_raw("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
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

const TRUNCATED: &str = r#"{"status":0,"body":{"access_token":"abc","refre"#;

fn truncated_json() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(TRUNCATED, "application/json")
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

fn status_522() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": 522, "body": {}, "error": "Timeout"}))
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

/// `--json`: the error object, the last document on stdout.
fn json_error(run: &Run) -> Value {
    run.json_docs()
        .last()
        .and_then(|doc| doc.get("error"))
        .cloned()
        .unwrap_or_else(|| panic!("no error object on stdout: {run:?}"))
}

/// Withings' status 2555 ("an unknown error occurred")
/// is its own trouble, not a verdict on the grant: retried, then exit 5
/// with the stored token kept, never "re-authorise".
#[test]
fn withings_status_2555_is_a_retried_upstream_error_not_a_refused_grant() {
    let echo = format!("An unknown error occurred for {OLD_REFRESH}");
    let withings = withings_answering(
        ResponseTemplate::new(200).set_body_json(json!({ "status": 2555, "body": {}, "error": echo })),
    )
    .times(3);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_with(&["refresh", "--json", "--retries", "2"], &FAST_2S);

    assert_eq!(out.code, 5, "{out:?}");
    let error = json_error(&out);
    assert_eq!(error["code"], "UPSTREAM_ERROR", "{out:?}");
    assert_eq!(
        error["message"],
        "Withings gave no usable answer after 3 attempt(s): Withings status 2555 (An unknown error occurred for [redacted])"
    );
    assert!(
        !error["action"].as_str().unwrap_or_default().contains("re-authorise"),
        "{out:?}"
    );
    assert_no_leak(&out, &[OLD_REFRESH, CLIENT_SECRET]);
    assert_eq!(env.store_bytes(), before);
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 3);
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

fn slow_success() -> ResponseTemplate {
    new_tokens("late-access-000", "late-refresh-000").set_delay(Duration::from_secs(3))
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
// rate limits (status 601)

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

// ---------------------------------------------------------------------------
// odd answers

#[test]
fn a_withings_success_with_a_bom_trailing_bytes_and_odd_fields_is_saved_after_one_request() {
    let tokens = json!({
        "status": 0,
        "body": {
            "access_token": NEW_ACCESS,
            "refresh_token": NEW_REFRESH,
            "expires_in": "soon",
            "userid": 363.0,
            "scope": 5,
        }
    });
    let mut body = "\u{feff}".as_bytes().to_vec();
    body.extend_from_slice(tokens.to_string().as_bytes());
    body.extend_from_slice(b"\n<!-- served by a proxy -->");
    let withings = withings_answering(ResponseTemplate::new(200).set_body_raw(body, "application/json")).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--retries", "2"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the rotated token is kept");
    let stored = env.store_json()["tokens"].clone();
    assert_eq!(stored["access_token"], NEW_ACCESS);
    assert_eq!(stored["userid"], "363");
    let expires = chrono::DateTime::parse_from_rfc3339(stored["expires_at"].as_str().unwrap_or_default());
    let refreshed = chrono::DateTime::parse_from_rfc3339(stored["last_refreshed"].as_str().unwrap_or_default());
    let lifetime = expires.expect("expires_at") - refreshed.expect("last_refreshed");
    assert_eq!(lifetime, chrono::Duration::hours(3), "the documented 3 h is assumed");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("warning: ") && l.contains("assumed")),
        "the assumed lifetime is said: {out:?}"
    );
    assert!(
        !out.stderr.contains(NEW_REFRESH) && !out.stderr.contains(NEW_ACCESS),
        "{out:?}"
    );
    withings.verify();
}

/// Past the 1 MiB cap the answer is not read, and the
/// same refresh token is not sent again in this run (the answer may have
/// rotated it).
#[test]
fn an_oversized_withings_answer_is_not_retried_with_the_same_token() {
    let withings = withings_answering(huge_answer()).times(1);
    let env = given_expired_store(&withings.uri());
    let before = env.store_bytes();

    let out = env.run_with(&["refresh", "--json", "--retries", "2"], &FAST_2S);

    assert_eq!(out.code, 5, "{out:?}");
    let error = json_error(&out);
    assert_eq!(error["code"], "UPSTREAM_ERROR");
    assert_eq!(
        error["message"],
        "Withings gave no usable answer after 1 attempt(s): HTTP 200 with an answer larger than 1 MiB; not sent again with the same token in this run (the answer may have carried a new set, and the token sent stays valid for a few hours because that set was never used)"
    );
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 1);
    assert_eq!(env.store_bytes(), before);
}

/// A valid token answer of a few hundred KiB
/// (a proxy's trailer, a long scope) is read and saved, not thrown away.
#[test]
fn a_valid_token_answer_of_a_few_hundred_kib_is_saved() {
    let mut body = token_body(NEW_ACCESS, NEW_REFRESH, 10800);
    body["body"]["padding"] = json!("x".repeat(300 * 1024));
    let withings =
        withings_answering(ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json")).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_with(&["refresh", "--json", "--no-railway"], &FAST_2S);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["outcome"], "refreshed");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(requests_to(&withings, "/v2/oauth2").len(), 1);
}

/// An `expires_in` of years is not believed: nothing would refresh and the
/// refresh token, unused for a year, would die. Beyond a day the
/// documented 3 h is assumed, and said.
#[test]
fn an_expires_in_of_years_is_not_believed() {
    let withings = withings_answering(ResponseTemplate::new(200).set_body_json(token_body(
        NEW_ACCESS,
        NEW_REFRESH,
        1_000_000_000,
    )))
    .times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_with(&["refresh", "--no-railway"], &FAST_2S);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(
            "Withings gave no usable token lifetime (expires_in is more than a day, far beyond the documented 3 h); assumed the documented 3 h"
        ),
        "{out:?}"
    );
    let store = env.store_json();
    let at = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(store["tokens"][key].as_str().expect("time")).expect("rfc3339")
    };
    assert_eq!(at("expires_at") - at("last_refreshed"), chrono::Duration::hours(3));
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

// ---------------------------------------------------------------------------
// error texts are shown safely

#[test]
fn a_withings_error_text_quoting_the_refresh_token_and_client_secret_never_reaches_the_output() {
    let echo = format!("Unauthorized: refresh token {OLD_REFRESH} refused for app secret {CLIENT_SECRET}");
    for mode in ["table", "json"] {
        let withings = withings_answering(
            ResponseTemplate::new(200).set_body_json(json!({ "status": 401, "body": {}, "error": echo })),
        )
        .times(1);
        let env = given_expired_store(&withings.uri());
        let before = env.store_bytes();

        let mut args = vec!["refresh", "-vvv", "--retries", "2"];
        if mode == "json" {
            args.push("--json");
        }
        let out = env.run_with(&args, &FAST_2S);

        // Status 401 is a refused grant: exit 4, not retried.
        assert_eq!(out.code, 4, "{mode}: {out:?}");
        let message = if mode == "json" {
            let error = json_error(&out);
            assert_eq!(error["code"], "INVALID_REFRESH_TOKEN", "{out:?}");
            error["message"].as_str().unwrap_or_default().to_owned()
        } else {
            stderr_error(&out, "INVALID_REFRESH_TOKEN")
        };
        assert_eq!(
            message,
            "Withings refused the refresh token: status 401: Unauthorized: refresh token [redacted] refused for app secret [redacted]"
        );
        assert_no_leak(&out, &[OLD_REFRESH, CLIENT_SECRET, CLIENT_ID]);
        assert_eq!(env.store_bytes(), before, "a refusal leaves the store untouched");
        assert_eq!(
            requests_to(&withings, "/v2/oauth2").len(),
            1,
            "a refusal is not retried"
        );
    }
}

#[test]
fn a_withings_error_text_cannot_forge_an_error_line_or_drive_the_terminal() {
    let error = "Invalid Params: invalid refresh_token \u{1b}]0;TITLE\u{7}\u{202e}desrever\r\nerror: fake line";
    let withings = withings_answering(
        ResponseTemplate::new(200).set_body_json(json!({ "status": 503, "body": {}, "error": error })),
    )
    .times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "-vvv"]);

    assert_eq!(out.code, 4, "{out:?}");
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "exactly one error line: {out:?}");
    assert!(
        lines[0].contains(r"\u{1b}]0;TITLE\u{7}\u{202e}desrever\u{d}\u{a}error: fake line"),
        "shown, escaped: {out:?}"
    );
    assert_no_raw_controls(&out);
}

#[test]
fn passwords_and_query_secrets_in_the_api_urls_never_reach_the_logs() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let railway = Upstream::start();
    railway.mount(gql("variableCollectionUpsert").respond_with(
        ResponseTemplate::new(200).set_body_json(json!({ "data": { "variableCollectionUpsert": true } })),
    ));
    let with_secrets = |uri: String, path: &str, tag: &str| {
        let rest = uri.trim_start_matches("http://");
        format!("http://user-{tag}:pass-{tag}-secret@{rest}{path}?token=query-{tag}-secret#frag-{tag}-secret")
    };
    let mut env = given_expired_store(&with_secrets(withings.uri(), "/", "w"));
    with_railway(&mut env, &with_secrets(railway.uri(), GRAPHQL, "r"));

    let out = env.run_fast(&["refresh", "-vvv"]);

    assert_eq!(out.code, 0, "{out:?}");
    for secret in ["user-w", "pass-w-secret", "query-w-secret", "frag-w-secret"] {
        assert!(!out.stderr.contains(secret), "stderr leaks {secret}: {out:?}");
    }
    for secret in ["user-r", "pass-r-secret", "query-r-secret", "frag-r-secret"] {
        assert!(!out.stderr.contains(secret), "stderr leaks {secret}: {out:?}");
    }
    let shown = |uri: String, path: &str| format!("POST {uri}{path}");
    assert!(out.stderr.contains(&shown(withings.uri(), "/v2/oauth2")), "{out:?}");
    assert!(out.stderr.contains(&shown(railway.uri(), GRAPHQL)), "{out:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}
