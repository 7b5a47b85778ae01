//! What an adversarial trial threw at the binary from upstream, end to end:
//! a Withings success in an odd shape is still a rotation and is saved; a
//! Railway mutation answering `false` is a failure; upstream text cannot
//! forge lines or drive the terminal; a URL's password and query never
//! reach the logs.

use crate::support::*;

const RAILWAY_TOKEN: &str = "railway-project-token-333";

/// Railway fully configured against `railway_url` (the GraphQL endpoint),
/// with a project token and an environment id, so that only the upsert is
/// called.
fn with_railway(env: &mut TestEnv, railway_url: &str) {
    env.set("RAILWAY_API_URL", railway_url)
        .set("RAILWAY_TOKEN", RAILWAY_TOKEN)
        .set("RAILWAY_PROJECT_ID", "proj-attack")
        .set("RAILWAY_SERVICE_ID", "svc-attack")
        .set("RAILWAY_ENVIRONMENT_ID", "env-attack");
}

/// The lines of stderr that start like the program's own error line.
fn error_lines(run: &Run) -> Vec<&str> {
    run.stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

fn assert_no_raw_controls(run: &Run) {
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(!run.stderr.contains(bad), "stderr carries {bad:?}: {run:?}");
        assert!(!run.stdout.contains(bad), "stdout carries {bad:?}: {run:?}");
    }
}

// ---------------------------------------------------------------------------
// A success in an odd shape is a rotation: saved, never retried

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

// ---------------------------------------------------------------------------
// A Railway mutation that does not answer `true` did not happen

#[test]
fn a_railway_upsert_answering_false_fails_and_the_copy_stays_behind() {
    let railway = Upstream::start();
    railway.mount(
        gql("variableCollectionUpsert")
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "data": { "variableCollectionUpsert": false } })),
            )
            .expect(1)
            .named("an answer, not a lost one: never sent again"),
    );
    let mut env = given_expired_store(&closed_port_url());
    with_railway(&mut env, &format!("{}{GRAPHQL}", railway.uri()));

    let out = env.run_with(&["railway-sync", "--retries", "2"], &NO_RETRY_DELAY);

    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(
        error_lines(&out),
        [
            "error: Railway was not updated: variableCollectionUpsert answered false instead of true [RAILWAY_UPDATE_FAILED]"
        ],
        "{out:?}"
    );
    let status = env.run(&["status", "--json"]).json();
    let copies = status["copies"].as_array().cloned().unwrap_or_default();
    assert_eq!(copies.len(), 1, "{status}");
    let copy = copies[0]["copy"].as_str().unwrap_or_default();
    assert!(copy.starts_with("railway"), "{status}");
    assert_eq!(copies[0]["behind"], true, "{status}");
    railway.verify();
}

// ---------------------------------------------------------------------------
// Upstream text is shown, never obeyed by the terminal

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
fn a_railway_error_message_cannot_forge_an_error_line_or_drive_the_terminal() {
    let railway = Upstream::start();
    railway.mount(
        gql("variableCollectionUpsert").respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": null,
            "errors": [{ "message": "Problem\u{1b}[2J\u{9b}31m\u{2066}\nerror: fake line" }],
        }))),
    );
    let mut env = given_expired_store(&closed_port_url());
    with_railway(&mut env, &format!("{}{GRAPHQL}", railway.uri()));

    let out = env.run_with(&["railway-sync", "-vvv"], &NO_RETRY_DELAY);

    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(error_lines(&out).len(), 1, "exactly one error line: {out:?}");
    assert!(
        out.stderr
            .contains(r"Problem\u{1b}[2J\u{9b}31m\u{2066}\u{a}error: fake line"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains('\u{9b}') && !out.stderr.contains('\u{2066}'),
        "{out:?}"
    );
    assert_no_raw_controls(&out);
}

#[test]
fn a_railway_variable_value_shown_by_a_dry_run_cannot_drive_the_terminal() {
    let railway = Upstream::start();
    railway.mount(
        gql("variables").respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "variables": { "WITHINGS_TOKEN_EXPIRES_AT": "363\u{1b}[2J\u{202e}\r\nerror: fake line" } },
        }))),
    );
    let mut env = given_expired_store(&closed_port_url());
    with_railway(&mut env, &format!("{}{GRAPHQL}", railway.uri()));

    let out = env.run_with(&["railway-sync", "--dry-run"], &NO_RETRY_DELAY);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(r"363\u{1b}[2J\u{202e}\u{d}\u{a}error: fake line"),
        "{out:?}"
    );
    assert!(error_lines(&out).is_empty(), "{out:?}");
    assert_no_raw_controls(&out);
}

// ---------------------------------------------------------------------------
// A URL's userinfo, query and fragment never reach a log line

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
