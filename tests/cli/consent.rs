//! Consent: `auth-url` issues the authorization URL and its state,
//! `exchange` takes the redirect URL (or the code, from an argument or
//! stdin) and stores the first set; a foreign or missing state and a reused
//! code are refused before anything is sent; `--region us` picks the US
//! hosts. (`login` does both in one run: see `login`.)

use crate::support::*;

use std::collections::HashMap;

// ---------------------------------------------------------------------------
// auth-url, then exchange

/// The sandbox plays a household: its consent page logs in as its second
/// person when the URL asks (`sandbox_user=2`), and each person's chain
/// rotates on its own, as two Withings users of one app do.
#[test]
fn the_sandbox_logs_in_as_its_second_person_when_asked_and_keeps_each_chain_apart() {
    let (sandbox, first) = given_sandbox();
    let mut second = TestEnv::new();
    sandbox.configure(&mut second);

    sandbox.authorise(&first);
    let Consent { auth, .. } = sandbox.consent(&second);
    let url = format!("{}&sandbox_user=2", auth["authorization_url"].as_str().unwrap());
    let redirect = sandbox.approve(&url);
    let out = second.run(&["exchange", &redirect, "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(first.store_json()["tokens"]["userid"], "31415926");
    assert_eq!(second.store_json()["tokens"]["userid"], "27182818");

    for env in [&first, &second, &first] {
        let out = env.run(&["refresh", "--no-railway", "--json"]);
        assert_eq!(out.code, 0, "{out:?}");
        let userid = env.store_json()["tokens"]["userid"].clone();
        assert_eq!(out.json()["userid"], userid);
    }
    for env in [&first, &second] {
        let out = env.run(&["validate", "--json"]);
        assert_eq!(out.code, 0, "each person's newest access token is live: {out:?}");
        assert_eq!(out.json()["validation"], "valid");
    }
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

/// `--region us` (or WITHINGS_REGION) picks both US hosts.
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
// the code from stdin

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

// ---------------------------------------------------------------------------
// refusals

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
