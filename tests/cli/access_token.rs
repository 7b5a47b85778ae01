//! `access-token`: the access token alone on stdout, refreshed first below
//! `--min-ttl` and not above it; with `--server`, the broker's token.

use crate::support::*;

// ---------------------------------------------------------------------------
// local

#[test]
fn a_token_with_more_than_min_ttl_left_is_printed_without_a_request() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());

    let out = env.run(&["access-token"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{OLD_ACCESS}\n"));
    assert!(!out.stderr.contains(OLD_ACCESS), "{out:?}");
    assert_eq!(env.stored_refresh_token(), OLD_REFRESH);
    withings.verify();
}

#[test]
fn a_token_with_less_than_min_ttl_left_is_refreshed_first() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = given_store_expiring_in(3 * 60);
    env.withings(&withings.uri());

    let out = env.run_fast(&["access-token", "--no-env-file"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{NEW_ACCESS}\n"), "only the new access token");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "saved as refresh does");
    withings.verify();
}

#[test]
fn min_ttl_decides_when_a_refresh_comes_first() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    // An hour left of a 3 h set; a min_ttl up to half the lifetime (1h30m)
    // is taken as given (beyond, it is capped: `serve_backoff`).
    let mut env = given_store_expiring_in(3600);
    env.withings(&withings.uri());

    let kept = env.run_fast(&["access-token", "--min-ttl", "50m"]);
    assert_eq!(kept.stdout, format!("{OLD_ACCESS}\n"), "{kept:?}");
    let refreshed = env.run_fast(&["access-token", "--min-ttl", "90m"]);
    assert_eq!(refreshed.code, 0, "{refreshed:?}");
    assert_eq!(refreshed.stdout, format!("{NEW_ACCESS}\n"), "{refreshed:?}");
    withings.verify();
}

// ---------------------------------------------------------------------------
// with --server

#[test]
fn access_token_with_server_prints_the_brokers_token_not_a_local_one() {
    let withings = silent_withings();
    let (_env, server) = given_server(&withings, 3 * 3600);

    for (variable, token) in [
        ("WITHINGS_TOKEN_READER_TOKEN", READER_TOKEN),
        ("ADMIN_API_TOKEN", ADMIN_TOKEN),
    ] {
        let reader = given_server_reader(&server, variable, token);
        let out = reader.run(&["access-token"]);
        assert_eq!(out.code, 0, "{variable}: {out:?}");
        assert_eq!(out.stdout, format!("{OLD_ACCESS}\n"), "{variable}");
        assert!(!out.stderr.contains(OLD_ACCESS), "{out:?}");
        assert!(!reader.store_path().exists(), "no local store was made");
    }
    withings.verify();
}

#[test]
fn access_token_with_server_passes_min_ttl_and_the_server_refreshes_once() {
    let withings = withings_rotating(OLD_REFRESH);
    // 80 minutes left; a min_ttl is capped at half the 3 h lifetime.
    let (env, server) = given_server(&withings, 80 * 60);
    let reader = given_server_reader(&server, "WITHINGS_TOKEN_READER_TOKEN", READER_TOKEN);

    let kept = reader.run(&["access-token", "--min-ttl", "60m"]);
    assert_eq!(kept.stdout, format!("{OLD_ACCESS}\n"), "{kept:?}");
    let refreshed = reader.run(&["access-token", "--min-ttl", "90m"]);

    assert_eq!(refreshed.code, 0, "{refreshed:?}");
    assert_eq!(refreshed.stdout, format!("{NEW_ACCESS}\n"), "{refreshed:?}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH, "the server saved the new set");
    withings.verify();
}

#[test]
fn a_reader_token_the_server_refuses_is_exit_3_naming_it() {
    let withings = silent_withings();
    let (_env, server) = given_server(&withings, 3 * 3600);
    let reader = given_server_reader(&server, "WITHINGS_TOKEN_READER_TOKEN", "not-the-reader-token");

    let out = reader.run(&["access-token", "--json"]);

    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout.lines().next(), Some("{"), "the JSON error object: {out:?}");
    let error = &out.json()["error"];
    assert_eq!(error["message"], "the server refused WITHINGS_TOKEN_READER_TOKEN (401)");
    assert!(!out.stderr.contains("WITHINGS_CLIENT_ID"), "{out:?}");
    withings.verify();
}

#[test]
fn refresh_if_needed_through_a_server_is_refused_pointing_at_status_check() {
    let mut env = given_store_expiring_in(3 * 3600);
    env.set("WITHINGS_TOKEN_SERVER", "http://127.0.0.1:9")
        .set("ADMIN_API_TOKEN", "admin-token-value");
    let before = env.store_bytes();

    for flag in ["--if-needed", "--dry-run"] {
        let out = env.run(&["refresh", flag, "--json"]);
        assert_eq!(out.code, 3, "{flag}: {out:?}");
        let error = &out.json()["error"];
        assert_eq!(error["code"], "CONFIGURATION_ERROR");
        assert_eq!(
            error["message"],
            "--if-needed and --dry-run are not available with --server: the server refreshes on its own schedule, and its refresh always rotates"
        );
        assert_eq!(
            error["action"],
            "to see whether a refresh is due, run `withings-token status --check` (exit 7 when due); to rotate now, run `withings-token refresh` without them; or run `refresh --if-needed` where the store is"
        );
    }
    assert_eq!(env.store_bytes(), before);
}

#[test]
fn commands_that_need_the_local_store_refuse_server_naming_it() {
    let mut env = given_store_expiring_in(3 * 3600);
    env.set("WITHINGS_TOKEN_SERVER", "http://127.0.0.1:9")
        .set("RAILWAY_TOKEN", "t")
        .set("RAILWAY_PROJECT_ID", "p")
        .set("RAILWAY_SERVICE_ID", "s");
    let before = env.store_bytes();

    for args in [
        &["export"][..],
        &["railway-sync"],
        &["pull", "--from", "railway"],
        &["validate"],
    ] {
        let command = args[0];
        let out = env.run(&[args, &["--json"]].concat());
        assert_eq!(out.code, 3, "{command}: {out:?}");
        let error = &out.json()["error"];
        assert_eq!(error["code"], "CONFIGURATION_ERROR", "{command}");
        assert_eq!(
            error["message"],
            format!(
                "`{command}` is not available with --server (WITHINGS_TOKEN_SERVER is set or --server was given): it works on a local store, and the server keeps its own"
            )
        );
        assert!(
            error["action"]
                .as_str()
                .unwrap()
                .contains("unset WITHINGS_TOKEN_SERVER"),
            "{out:?}"
        );
        assert!(
            !out.stdout.contains(OLD_ACCESS) && !out.stdout.contains(OLD_REFRESH),
            "{out:?}"
        );
    }
    env.set("WITHINGS_TOKEN_READER_TOKEN", READER_TOKEN);
    let out = env.run(&["access-token", "--no-railway"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("not available with --server"), "{out:?}");
    assert_eq!(env.store_bytes(), before);
}
