//! `doctor [--online]`: one line per check, exit 0
//! when nothing fails (warnings allowed), 3 when something does. The online
//! checks run against a wiremock server playing Withings' token endpoint and
//! Railway's GraphQL endpoint at once; nothing here touches the internet.

use crate::support::*;

use wiremock::matchers::{method, path};

const PROJECT: &str = "proj-1111";
const SERVICE: &str = "svc-2222";
const ENVIRONMENT: &str = "env-3333";

/// A user with the app's credentials (Withings at `withings_url`), no
/// Railway, and a private store holding [`OLD_ACCESS`] / [`OLD_REFRESH`]
/// with 3 h left.
fn given_good_setup(withings_url: &str) -> TestEnv {
    let mut env = TestEnv::new();
    env.withings(withings_url);
    env.seed_store(OLD_ACCESS, OLD_REFRESH, 3 * 3600);
    set_modes(&env, 0o600, 0o700);
    env
}

fn set_modes(env: &TestEnv, file: u32, dir: u32) {
    use std::os::unix::fs::PermissionsExt;
    let store = env.store_path();
    let chmod = |p: &std::path::Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    chmod(&store, file).expect("chmod store");
    chmod(store.parent().expect("dir"), dir).expect("chmod dir");
}

/// `Tue, 15 Nov 1994 08:12:31 GMT`, `offset` from now.
fn http_date(offset: chrono::Duration) -> String {
    (chrono::Utc::now() + offset)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Withings refusing every token request (as it refuses the probe's
/// made-up token), its `Date` header `clock_offset` from now.
fn withings_refusing(clock_offset: chrono::Duration) -> Upstream {
    let upstream = Upstream::start();
    upstream.mount(token_request().respond_with(refused_refresh().insert_header("Date", http_date(clock_offset))));
    upstream
}

/// Railway on `upstream`, fully configured, its service holding `variables`.
fn with_railway_holding(env: &mut TestEnv, upstream: &Upstream, variables: Value) {
    env.set("RAILWAY_API_URL", format!("{}{GRAPHQL}", upstream.uri()))
        .set("RAILWAY_TOKEN", "project-token-secret-ppp")
        .set("RAILWAY_PROJECT_ID", PROJECT)
        .set("RAILWAY_SERVICE_ID", SERVICE)
        .set("RAILWAY_ENVIRONMENT_ID", ENVIRONMENT);
    let answer = ResponseTemplate::new(200).set_body_json(json!({ "data": { "variables": variables } }));
    upstream.mount(gql("variables").respond_with(answer));
}

#[test]
fn a_good_setup_passes_with_every_check_ok_and_sends_nothing() {
    let withings = silent_withings();
    let env = given_good_setup(&withings.uri());

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    // The checks, then where the settings came from (`from` lines).
    for line in run.stdout.lines().filter(|l| !l.starts_with("from  ")) {
        assert!(line.starts_with("ok    "), "not ok: {line}\n{run:?}");
    }
    let store = env.store_path().display().to_string();
    let tokens = &env.store_json()["tokens"];
    let expires_at = tokens["expires_at"].as_str().unwrap_or_default();
    let issued = tokens["last_refreshed"].as_str().unwrap_or_default();
    let expected = [
        "ok    env file           none read: settings come from the process environment".to_owned(),
        "ok    credentials        WITHINGS_CLIENT_ID test-client-id, WITHINGS_CLIENT_SECRET set".to_owned(),
        "ok    redirect uri       https://example.com/callback".to_owned(),
        format!("ok    api url            {}/", withings.uri()),
        format!("ok    store              {store} (store generation 1)"),
        "ok    store permissions  file 0600, directory 0700".to_owned(),
        "ok    encryption         plain: no recipient is configured (mode 0600 keeps the file this user's); `encrypt_to` encrypts it (docs/encryption.md)".to_owned(),
        format!("ok    access token       expires at {expires_at} (in 3.0 h)"),
        format!("ok    refresh token age  issued {issued}, 0 days ago (Withings drops one unused for a year)"),
        "ok    railway            not configured (no copy goes to Railway)".to_owned(),
        "ok    events             no sink configured: events are only logged (on_event, webhook_url, ping_url: docs/events.md)".to_owned(),
    ];
    for line in &expected {
        assert!(run.stdout.lines().any(|l| l == line), "missing `{line}`:\n{run:?}");
    }
    assert_eq!(
        run.stdout.lines().filter(|l| !l.starts_with("from  ")).count(),
        13,
        "{run:?}"
    );
    assert_eq!(
        run.stdout.lines().filter(|l| l.starts_with("from  ")).count(),
        10,
        "{run:?}"
    );
    withings.verify();
}

#[test]
fn the_json_report_has_a_version_the_checks_and_ok() {
    let withings = silent_withings();
    let env = given_good_setup(&withings.uri());

    let run = env.run(&["doctor", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    // serde_json keeps keys sorted: this compares the set of keys.
    let keys: Vec<&String> = report.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["checks", "ok", "sources", "version"], "{report}");
    assert_eq!(report["version"], 1);
    assert_eq!(report["ok"], true);
    let checks = report["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 13, "{report}");
    assert_eq!(
        checks[11],
        json!({
            "name": "railway",
            "result": "ok",
            "detail": "not configured (no copy goes to Railway)",
            "action": null,
        })
    );
    assert_eq!(
        checks[12],
        json!({
            "name": "events",
            "result": "ok",
            "detail": "no sink configured: events are only logged (on_event, webhook_url, ping_url: docs/events.md)",
            "action": null,
        })
    );
    for check in checks {
        let keys: Vec<&String> = check.as_object().expect("check").keys().collect();
        assert_eq!(keys, ["action", "detail", "name", "result"], "{check}");
    }
}

#[test]
fn a_missing_client_id_fails_with_exit_3_naming_it() {
    let withings = silent_withings();
    let mut env = given_good_setup(&withings.uri());
    env.set("WITHINGS_CLIENT_ID", "");

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 3, "{run:?}");
    let (line, next) = check_of(&run, "credentials");
    assert_eq!(
        line,
        "fail  credentials        WITHINGS_CLIENT_ID is not set: refresh and exchange cannot work"
    );
    let action = "set WITHINGS_CLIENT_ID (your app's, on developer.withings.com) in the environment or in the env file (`--env-file`, default ./.env)";
    assert_eq!(next, Some(format!("                         next: {action}").as_str()));
    assert!(
        run.stderr.ends_with(&format!(
            "error: doctor found a problem: credentials [CONFIGURATION_ERROR]\n  next: {action}\n"
        )),
        "{run:?}"
    );

    let json_run = env.run(&["doctor", "--json"]);
    assert_eq!(json_run.code, 3, "{json_run:?}");
    let report = json_run.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["error"]["code"], "CONFIGURATION_ERROR");
    assert_eq!(report["checks"][1]["result"], "fail");
    assert_eq!(report["checks"][1]["action"], action);
}

#[test]
fn a_store_readable_by_others_is_a_warning_with_the_chmod_to_run() {
    let withings = silent_withings();
    let env = given_good_setup(&withings.uri());
    set_modes(&env, 0o644, 0o700);

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 0, "warnings do not fail: {run:?}");
    let store = env.store_path().display().to_string();
    assert_eq!(
        check_of(&run, "store permissions"),
        (
            format!("warn  store permissions  {store} is mode 0644: group or others can read the tokens").as_str(),
            Some(
                format!("                         next: run `chmod 600 {store}` (the next save also rewrites it 0600)")
                    .as_str()
            )
        )
    );
    assert_eq!(file_mode(&env.store_path()), 0o644, "doctor changes nothing");
}

#[test]
fn a_refresh_token_300_days_old_is_a_warning() {
    let withings = silent_withings();
    let env = given_good_setup(&withings.uri());
    let now = chrono::Utc::now();
    let issued = rfc3339(now - chrono::Duration::days(310));
    let mut store = env.store_json();
    store["tokens"]["last_refreshed"] = json!(issued);
    store["tokens"]["expires_at"] = json!(rfc3339(now + chrono::Duration::hours(2)));
    env.write_store_bytes(&serde_json::to_vec(&store).expect("json"));

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (line, next) = check_of(&run, "refresh token age");
    assert_eq!(
        line,
        format!(
            "warn  refresh token age  issued {issued}, 310 days ago: Withings drops a refresh token unused for a year"
        )
    );
    assert!(
        next.is_some_and(|n| n.contains("run `withings-token refresh` now")),
        "{run:?}"
    );
}

#[test]
fn half_configured_railway_fails_naming_the_missing_variable() {
    let withings = silent_withings();
    let mut env = given_good_setup(&withings.uri());
    env.set("RAILWAY_TOKEN", "project-token-secret-ppp")
        .set("RAILWAY_PROJECT_ID", PROJECT);

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 3, "{run:?}");
    let (line, _) = check_of(&run, "railway");
    assert_eq!(
        line,
        "fail  railway            only partly configured: missing RAILWAY_SERVICE_ID; `refresh` and `exchange` stop (exit 3) until it is complete"
    );
    assert!(
        run.stderr
            .contains("error: doctor found a problem: railway [CONFIGURATION_ERROR]"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("project-token-secret-ppp") && !run.stderr.contains("project-token-secret-ppp"));
}

#[test]
fn settings_that_do_not_load_are_the_failed_check() {
    let mut env = TestEnv::new();
    env.set("WITHINGS_REGION", "mars");

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.stdout,
        "fail  settings           WITHINGS_REGION must be `eu` or `us`\n                         next: set WITHINGS_REGION=eu (the default) or us (US-hosted HIPAA accounts), or remove it\n"
    );
}

#[test]
fn a_corrupt_store_fails() {
    let withings = silent_withings();
    let env = given_good_setup(&withings.uri());
    env.write_store_bytes(b"{not json");

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 3, "{run:?}");
    let (line, _) = check_of(&run, "store");
    assert!(line.starts_with("fail  store              token store "), "{line}");
    assert!(line.contains("is unreadable: not a withings-token store"), "{line}");
    assert!(
        !run.stdout.contains("access token"),
        "no token checks without a store: {run:?}"
    );
}

#[test]
fn online_with_railway_holding_a_newer_set_warns_that_someone_else_refreshes() {
    let upstream = withings_refusing(chrono::Duration::zero());
    let mut env = given_good_setup(&upstream.uri());
    let stored = env.store_json()["tokens"].clone();
    let later = rfc3339(chrono::Utc::now() + chrono::Duration::minutes(30));
    let railway = json!({
        "WITHINGS_ACCESS_TOKEN": "railway-access-aaa",
        "WITHINGS_REFRESH_TOKEN": "railway-refresh-qqq",
        "WITHINGS_TOKEN_EXPIRES_AT": rfc3339(chrono::Utc::now() + chrono::Duration::hours(3)),
        "WITHINGS_TOKEN_LAST_REFRESHED": later,
    });
    with_railway_holding(&mut env, &upstream, railway);

    let run = env.run(&["doctor", "--online"]);
    assert_eq!(run.code, 0, "warnings only: {run:?}");
    let issued = stored["last_refreshed"].as_str().unwrap_or_default();
    assert_eq!(
        check_of(&run, "one owner"),
        (
            format!("warn  one owner          Railway holds a newer set (last refreshed {later}) than the store ({issued}): someone else is refreshing").as_str(),
            Some("                         next: run `withings-token pull --from railway`, then let one actor own the refresh (docs/railway.md, \"One owner of the refresh\")")
        )
    );
    assert_eq!(
        check_of(&run, "withings").0,
        format!(
            "ok    withings           {}/ answers (a probe with a made-up refresh token got status 503: Invalid Params: invalid refresh_token)",
            upstream.uri()
        )
    );
    assert_eq!(
        check_of(&run, "railway api").0,
        format!(
            "ok    railway api        the token reads the variables of service {SERVICE} in environment {ENVIRONMENT}"
        )
    );
    assert!(
        check_of(&run, "clock")
            .0
            .starts_with("ok    clock              agrees with Withings' Date header")
    );

    // One probe, with the made-up token; one read of Railway, no mutation.
    let requests = upstream.requests();
    let probes: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path() == "/v2/oauth2")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert!(
        probes[0].contains("refresh_token=withings-token-doctor-probe"),
        "{probes:?}"
    );
    for secret in [OLD_REFRESH, OLD_ACCESS] {
        assert!(!probes[0].contains(secret), "the account's token was sent: {probes:?}");
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{run:?}");
    }
    let graphql: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path() == GRAPHQL)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(graphql.len(), 1, "{graphql:?}");
    assert!(graphql[0].contains("query variables("), "{graphql:?}");
    assert_eq!(env.store_json()["tokens"], stored, "the store is untouched");
}

#[test]
fn online_with_a_clock_five_minutes_off_warns_about_the_skew() {
    let upstream = withings_refusing(chrono::Duration::minutes(-5));
    let env = given_good_setup(&upstream.uri());

    let run = env.run(&["doctor", "--online"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (line, next) = check_of(&run, "clock");
    let said = |secs: i64| {
        format!("warn  clock              this host's clock is {secs} s ahead of Withings' (its Date header)")
    };
    assert!((299..=301).any(|s| line == said(s)), "{line}");
    assert!(next.is_some_and(|n| n.contains("timedatectl set-ntp true")), "{run:?}");
    assert!(!run.stdout.contains("railway api"), "no Railway configured: {run:?}");
}

#[test]
fn online_with_withings_unreachable_fails() {
    let env = given_good_setup(&closed_port_url());

    let run = env.run(&["doctor", "--online", "--timeout", "2s"]);
    assert_eq!(run.code, 3, "{run:?}");
    let (line, next) = check_of(&run, "withings");
    assert!(
        line.starts_with("fail  withings           could not reach Withings after 1 attempt(s): connection failed"),
        "{line}"
    );
    assert!(
        next.is_some_and(|n| n.ends_with("then run `withings-token doctor --online` again")),
        "{run:?}"
    );
    assert!(!run.stdout.contains("clock"), "no answer, no clock: {run:?}");
}

#[test]
fn online_with_refused_credentials_fails_naming_them() {
    let upstream = Upstream::start();
    upstream.mount(Mock::given(method("POST")).and(path("/v2/oauth2")).respond_with(
        ResponseTemplate::new(200).set_body_json(json!({
            "status": 503, "body": {}, "error": "Invalid Params: invalid client_id",
        })),
    ));
    let env = given_good_setup(&upstream.uri());

    let run = env.run(&["doctor", "--online"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        check_of(&run, "withings"),
        (
            "fail  withings           Withings refused the app credentials (status 503: Invalid Params: invalid client_id)",
            Some(
                "                         next: check WITHINGS_CLIENT_ID and WITHINGS_CLIENT_SECRET against your app on developer.withings.com"
            )
        )
    );
    assert!(!run.stdout.contains(CLIENT_SECRET) && !run.stderr.contains(CLIENT_SECRET));
}

#[test]
fn with_server_only_this_hosts_side_is_checked_and_online_asks_the_server() {
    let withings = silent_withings();
    let mut host = given_good_setup(&withings.uri());
    host.serve_credentials();
    let server = host.serve(&[]);
    let mut client = TestEnv::new();
    let url = format!("http://{}", server.addr);
    client.set("WITHINGS_TOKEN_SERVER", url.as_str());

    let run = client.run(&["doctor"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "ok    env file           none read: settings come from the process environment\n\
             ok    server             {url}/ (--server: this host's side only; run `withings-token doctor` on the server's host for its store)\n\
             fail  admin token        ADMIN_API_TOKEN is not set: --server needs it\n\
             \x20                        next: set ADMIN_API_TOKEN to the value the server was started with\n"
        )
    );

    client.set("ADMIN_API_TOKEN", ADMIN_TOKEN);
    let run = client.run(&["doctor", "--online"]);
    assert_eq!(run.code, 0, "{run:?}");
    let expires_at = host.store_json()["tokens"]["expires_at"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        check_of(&run, "server answers").0,
        format!("ok    server answers     its status: a token set, expiring at {expires_at}")
    );
    withings.verify();
}

#[test]
fn a_redis_store_is_read_and_an_unreachable_one_fails() {
    // One that keeps what it is given (see `redis` for the others).
    let redis = RedisServer::start_with(&["--appendonly", "yes"]);
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri()).on_redis(&redis);
    let now = chrono::Utc::now();
    redis.write_store(&json!({
        "version": 1,
        "generation": 4,
        "tokens": {
            "access_token": OLD_ACCESS,
            "refresh_token": OLD_REFRESH,
            "expires_at": rfc3339(now + chrono::Duration::hours(3)),
            "last_refreshed": rfc3339(now),
        },
    }));

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        check_of(&run, "store").0,
        format!(
            "ok    store              {} key {REDIS_KEY}, a Redis store (store generation 4)",
            redis.url()
        )
    );
    assert!(
        !run.stdout.contains("store permissions"),
        "a file's modes only: {run:?}"
    );

    drop(redis);
    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 3, "{run:?}");
    let (line, _) = check_of(&run, "store");
    assert!(
        line.starts_with("fail  store              the token store is unavailable: "),
        "{line}"
    );
    withings.verify();
}
