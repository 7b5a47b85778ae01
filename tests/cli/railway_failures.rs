//! When Railway fails: GraphQL errors, an upsert answering `false` and an
//! oversized answer are exit 6 with the new tokens kept (and pushed by the
//! next `--if-needed` run); Cloudflare pages and 429 are retried as asked;
//! a lost redeploy answer is not sent again; half a configuration is exit 3
//! before anything is sent; Railway's texts never drive the terminal nor
//! show a secret.

use crate::support::*;

use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// exit 6 keeps the new tokens

#[test]
fn graphql_errors_on_http_200_fail_with_exit_6_keeping_the_new_tokens() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(graphql_error("Not Authorized")));
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    // The store has the new set.
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(stored_tokens(&env)["access_token"], NEW_ACCESS);
    // One JSON document: the token report, with the failure inside it.
    let report = run.json();
    assert_eq!(report["outcome"], "refreshed");
    assert_eq!(report["railway"], "failed");
    assert_eq!(report["deployment_triggered"], false);
    assert_eq!(report["refresh_token"], "token_*****xyz");
    assert_eq!(report["error"]["code"], "RAILWAY_UPDATE_FAILED");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("variableCollectionUpsert failed: Not Authorized"),
        "names the operation and Railway's message: {report}"
    );
    assert!(
        report["error"]["action"].as_str().unwrap().contains("railway-sync"),
        "{report}"
    );
    // Human side: the action line says what to do.
    assert!(run.stderr.contains("RAILWAY_UPDATE_FAILED"), "{run:?}");
    assert!(run.stderr.contains("withings-token railway-sync"), "{run:?}");
    assert!(!run.stdout.contains(NEW_REFRESH) && !run.stderr.contains(NEW_REFRESH));
    // `Not Authorized` is not retried.
    assert_eq!(peer.bodies(UPSERT).len(), 1, "{run:?}");
}

#[test]
fn graphql_errors_with_output_env_still_print_the_four_lines() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(graphql_error("Not Authorized")));
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--output-env"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    let tokens = stored_tokens(&env);
    let expected = format!(
        "WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\nWITHINGS_REFRESH_TOKEN={NEW_REFRESH}\nWITHINGS_TOKEN_EXPIRES_AT={}\nWITHINGS_TOKEN_LAST_REFRESHED={}\n",
        tokens["expires_at"].as_str().unwrap(),
        tokens["last_refreshed"].as_str().unwrap()
    );
    assert_eq!(run.stdout, expected, "{run:?}");
    assert!(run.stderr.contains("RAILWAY_UPDATE_FAILED"), "{run:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

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

/// How many GraphQL requests named `name` arrived.
fn graphql_count(peer: &Upstream, name: &str) -> usize {
    requests_to(peer, GRAPHQL)
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains(&format!("{name}(")))
        .count()
}

#[test]
fn an_oversized_railway_answer_fails_the_push_naming_the_cap() {
    let peer = Upstream::start();
    peer.mount(gql("variableCollectionUpsert").respond_with(huge_answer()));
    let mut env = given_expired_store(&peer.uri());
    with_railway(&mut env, &format!("{}{GRAPHQL}", peer.uri()));

    let out = env.run_with(&["railway-sync", "--retries", "1"], &FAST_2S);

    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(
        stderr_error(&out, "RAILWAY_UPDATE_FAILED"),
        "Railway was not updated: Railway gave no usable answer after 2 attempt(s): HTTP 200 with an answer larger than 1 MiB"
    );
    assert_eq!(graphql_count(&peer, "variableCollectionUpsert"), 2);
}

/// Railway down during a refresh (exit 6) is not left behind for hours: the next `refresh --if-needed` finds nothing due, and
/// still pushes the stored set, without rotating; `status` shows it behind
/// meanwhile; once Railway has it, nothing more is pushed.
#[test]
fn a_railway_copy_left_stale_is_pushed_by_the_next_if_needed_without_rotating() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(ResponseTemplate::new(503)).up_to_n_times(1));
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let failed = env.run_with(&["refresh", "--quiet", "--retries", "0"], &NO_RETRY_DELAY);
    assert_eq!(failed.code, 6, "{failed:?}");
    assert_eq!(failed.stdout, "", "--quiet: no table");
    assert!(
        failed.stderr.contains("[RAILWAY_UPDATE_FAILED]"),
        "never hidden: {failed:?}"
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    let status = env.run(&["status", "--json"]).json();
    assert_eq!(
        status["copies"][0]["copy"],
        format!("railway:{PROJECT}/{SERVICE}@{ENVIRONMENT}")
    );
    assert_eq!(status["copies"][0]["behind"], true, "{status}");

    let healed = env.run_with(&["refresh", "--if-needed", "--json"], &NO_RETRY_DELAY);
    assert_eq!(healed.code, 0, "{healed:?}");
    let report = healed.json();
    assert_eq!(report["outcome"], "not_due");
    assert_eq!(report["railway"], "updated");
    let message = report["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with("; brought Railway up to date without rotating"),
        "{message}"
    );
    assert_eq!(peer.token_requests(), 1, "one rotation only");
    let upserts = peer.bodies(UPSERT);
    assert_eq!(upserts.len(), 2, "the failed push and the healing one");
    assert_eq!(
        upserts[1]["variables"]["input"]["variables"]["WITHINGS_REFRESH_TOKEN"],
        NEW_REFRESH
    );
    assert_eq!(env.run(&["status", "--json"]).json()["copies"][0]["behind"], false);

    let again = env.run_with(&["refresh", "--if-needed", "--json"], &NO_RETRY_DELAY);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()["railway"], "skipped", "already up to date");
    assert_eq!(peer.bodies(UPSERT).len(), 2, "nothing more pushed");
}

// ---------------------------------------------------------------------------
// retries: Cloudflare HTML and 429

const CLOUDFLARE_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Access denied | backboard.railway.com used Cloudflare to restrict access</title></head><body><h1>Error 1020</h1><p>Access denied</p></body></html>";

#[test]
fn cloudflare_html_403_is_retried_then_succeeds() {
    let peer = Peer::start();
    peer.mount(
        gql(UPSERT)
            .respond_with(ResponseTemplate::new(403).set_body_raw(CLOUDFLARE_PAGE, "text/html; charset=UTF-8"))
            .up_to_n_times(2)
            .with_priority(1),
    );
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--json"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["railway"], "updated");
    assert_eq!(peer.bodies(UPSERT).len(), 3, "two HTML pages, then the answer");
    assert!(run.stderr.contains("HTML"), "the retry says why: {run:?}");
    assert!(
        !run.stderr.contains("Error 1020"),
        "the page itself is not dumped: {run:?}"
    );
}

#[test]
fn cloudflare_html_every_time_ends_in_exit_6() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(ResponseTemplate::new(403).set_body_raw(CLOUDFLARE_PAGE, "text/html")));
    let env = given_expired_store_and_railway(&peer);

    let run = env.run_with(&["refresh", "--retries", "2"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    assert_eq!(peer.bodies(UPSERT).len(), 3, "1 + --retries 2");
    assert!(run.stderr.contains("RAILWAY_UPDATE_FAILED"), "{run:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

#[test]
fn rate_limit_429_honours_retry_after_then_succeeds() {
    let peer = Peer::start();
    // First 429 asks for 1 s, the second for 0 s; then the answer.
    peer.mount(
        gql(UPSERT)
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .insert_header("X-RateLimit-Remaining", "0"),
            )
            .up_to_n_times(1)
            .with_priority(1),
    );
    peer.mount(
        gql(UPSERT)
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
            .up_to_n_times(1)
            .with_priority(2),
    );
    peer.railway_ok();
    let env = given_expired_store_and_railway(&peer);

    let started = Instant::now();
    let run = env.run_with(&["refresh", "--json"], &NO_RETRY_DELAY);
    let elapsed = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["railway"], "updated");
    assert_eq!(peer.bodies(UPSERT).len(), 3, "{run:?}");
    assert!(
        elapsed >= Duration::from_millis(950),
        "Retry-After: 1 was honoured although --retry-delay is 0s ({elapsed:?})"
    );
}

#[test]
fn rate_limit_with_a_long_retry_after_stops_at_once_with_exit_6() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600")));
    let env = given_expired_store_and_railway(&peer);

    let started = Instant::now();
    let run = env.run_with(&["refresh"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 6, "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "no hour-long sleep");
    assert_eq!(peer.bodies(UPSERT).len(), 1);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
}

#[test]
fn a_redeploy_whose_answer_is_lost_is_not_sent_again() {
    let peer = Upstream::start();
    peer.mount(gql("variableCollectionUpsert").respond_with(
        ResponseTemplate::new(200).set_body_json(json!({ "data": { "variableCollectionUpsert": true } })),
    ));
    peer.mount(
        gql("serviceInstanceRedeploy").respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": { "serviceInstanceRedeploy": true } }))
                .set_delay(Duration::from_secs(4)),
        ),
    );
    let mut env = given_expired_store(&peer.uri());
    with_railway(&mut env, &format!("{}{GRAPHQL}", peer.uri()));

    let out = env.run_with(&["railway-sync", "--trigger-deployment", "--retries", "3"], &FAST_2S);

    assert_eq!(out.code, 6, "{out:?}");
    let message = stderr_error(&out, "RAILWAY_UPDATE_FAILED");
    assert!(
        message.starts_with(
            "Railway was not updated: Railway gave no usable answer after 1 attempt(s): serviceInstanceRedeploy got no answer (timed out after 2 s"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("it may have been carried out, so it was not sent again: check Railway before repeating it"),
        "{message}"
    );
    assert_eq!(graphql_count(&peer, "variableCollectionUpsert"), 1);
    assert_eq!(graphql_count(&peer, "serviceInstanceRedeploy"), 1, "never sent twice");
    assert_no_leak(&out, &[RAILWAY_TOKEN, OLD_REFRESH, OLD_ACCESS]);
}

// ---------------------------------------------------------------------------
// half a configuration

/// A half-configured Railway (a typo such as
/// `RAILWAY_SERVICE` for `RAILWAY_SERVICE_ID`) must not let a refresh rotate
/// the token and leave Railway behind with a warning `-q` hides.
#[test]
fn refresh_with_half_configured_railway_is_exit_3_before_anything_is_sent() {
    let peer = Peer::start();
    let mut env = given_expired_store(&peer.withings_url());
    env.set("RAILWAY_API_URL", peer.graphql_url())
        .set("RAILWAY_TOKEN", PROJECT_TOKEN)
        .set("RAILWAY_SERVICE", SERVICE);
    let before = env.store_bytes();

    let run = env.run_with(&["refresh", "--json", "--quiet"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    let error = &run.json()["error"];
    assert_eq!(error["code"], "CONFIGURATION_ERROR");
    assert_eq!(
        error["message"],
        "Railway is only partly configured: missing RAILWAY_PROJECT_ID, RAILWAY_SERVICE_ID; nothing was sent"
    );
    assert!(
        error["action"].as_str().unwrap_or_default().contains("`--no-railway`"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("[CONFIGURATION_ERROR]"),
        "-q never hides it: {run:?}"
    );
    assert_eq!(env.store_bytes(), before, "nothing was rotated");
    assert_eq!(peer.token_requests(), 0, "nothing was sent to Withings");
    assert!(peer.graphql_requests().is_empty());

    // `--no-railway` is the documented way past it: the refresh goes ahead.
    let run = env.run_with(&["refresh", "--json", "--no-railway"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["railway"], "skipped");
}

#[test]
fn trigger_deployment_without_railway_is_exit_3_before_anything_is_sent() {
    let peer = Peer::start();
    let env = given_expired_store(&peer.withings_url());
    let before = env.store_bytes();

    let run = env.run_with(&["refresh", "--trigger-deployment"], &NO_RETRY_DELAY);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("error: --trigger-deployment needs Railway, which is not configured [CONFIGURATION_ERROR]"),
        "{run:?}"
    );
    assert_eq!(env.store_bytes(), before);
    assert_eq!(peer.token_requests(), 0);
}

// ---------------------------------------------------------------------------
// Railway's words are shown, never obeyed

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

#[test]
fn a_railway_error_quoting_the_withings_client_secret_never_shows_it() {
    let peer = Peer::start();
    peer.mount(gql(UPSERT).respond_with(graphql_error(
        "denied; WITHINGS_CLIENT_SECRET=TopSecretClientValue is not allowed",
    )));
    let mut env = given_fresh_store_and_railway_service(&peer);
    env.set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT)
        .set("WITHINGS_CLIENT_SECRET", "TopSecretClientValue");
    for args in [
        vec!["railway-sync"],
        vec!["railway-sync", "--json", "--log-format", "json"],
    ] {
        let run = env.run_with(&args, &NO_RETRY_DELAY);
        assert_eq!(run.code, 6, "{run:?}");
        assert!(
            run.stderr.contains("[redacted] is not allowed") || run.stdout.contains("[redacted] is not allowed"),
            "{run:?}"
        );
        assert!(
            !run.stdout.contains("TopSecretClientValue") && !run.stderr.contains("TopSecretClientValue"),
            "{run:?}"
        );
    }
}
