//! `access-token` (issue 13, item 1): the access token alone on stdout,
//! refreshed first below `--min-ttl` and not above it.
//! `cargo test --features failpoints --test cli access_token::`

use crate::support::*;

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
    // is taken as given (beyond, it is capped: `serve_abuse`).
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
// exec (issue 13, item 2)

#[test]
fn exec_gives_the_command_the_token_and_exits_with_its_code() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    let script =
        r#"printf '%s|%s|%s' "$WITHINGS_ACCESS_TOKEN" "$WITHINGS_USERID" "${WITHINGS_TOKEN_EXPIRES_AT:+set}"; exit 3"#;

    let out = env.run(&["exec", "--", "/bin/sh", "-c", script]);

    assert_eq!(out.code, 3, "the command's own exit code: {out:?}");
    assert_eq!(out.stdout, format!("{OLD_ACCESS}|363|set"));
    withings.verify();
}

#[test]
fn exec_refreshes_first_below_min_ttl() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = given_store_expiring_in(3 * 60);
    env.withings(&withings.uri());

    let out = env.run_fast(&[
        "exec",
        "--no-env-file",
        "--",
        "/bin/sh",
        "-c",
        "printf %s \"$WITHINGS_ACCESS_TOKEN\"",
    ]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, NEW_ACCESS);
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    withings.verify();
}

#[test]
fn exec_says_127_for_a_missing_command_and_126_for_one_that_cannot_run() {
    let env = given_store_expiring_in(3 * 3600);
    let out = env.run(&["exec", "--", "no-such-command-withings-test"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(out.stderr.contains("[COMMAND_NOT_FOUND]"), "{out:?}");

    let not_executable = env.work_dir().join("script.sh");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    let out = env.run(&["exec", "--", &not_executable.display().to_string()]);
    assert_eq!(out.code, 126, "{out:?}");
    assert!(out.stderr.contains("[COMMAND_NOT_EXECUTABLE]"), "{out:?}");
    assert!(!out.stderr.contains(OLD_ACCESS), "{out:?}");
}

/// Issue 18, the adversarial trial: a mistyped command on a set that is
/// due rotated the token first, then said "not found".
#[test]
fn exec_checks_the_command_before_refreshing_a_due_set() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let stored = env.store_bytes();
    let not_executable = env.work_dir().join("script.sh");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    let not_executable = not_executable.display().to_string();
    for (command, code) in [
        ("/nonexistent/cmd", 127),
        ("no-such-command-withings-test", 127),
        (not_executable.as_str(), 126),
    ] {
        let out = env.run(&["exec", "--", command]);
        assert_eq!(out.code, code, "{command}: {out:?}");
        assert!(
            out.stderr.contains(&format!("error: cannot run `{command}`")),
            "{out:?}"
        );
        assert!(out.stderr.contains("the token set is safe in the store"), "{out:?}");
    }
    assert_eq!(env.store_bytes(), stored, "nothing was refreshed");
    withings.verify();
}

#[test]
fn exec_under_github_actions_masks_the_token_it_hands_to_the_command() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri()).set("GITHUB_ACTIONS", "true");
    let out = env.run(&[
        "exec",
        "--",
        "/bin/sh",
        "-c",
        "echo \"log: $WITHINGS_ACCESS_TOKEN\" >&2",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .ends_with(&format!("\n::add-mask::{OLD_ACCESS}\nlog: {OLD_ACCESS}\n")),
        "masked before the command runs: {out:?}"
    );
}

#[test]
fn a_mask_is_escaped_as_the_runner_decodes_it() {
    let env = TestEnv::new();
    let now = chrono::Utc::now();
    let store = json!({"version": 1, "generation": 1, "tokens": {
        "access_token": "at%0Aabc", "refresh_token": "rt-plain-1",
        "expires_at": rfc3339(now + chrono::Duration::hours(2)), "last_refreshed": rfc3339(now)}});
    env.write_store_bytes(store.to_string().as_bytes());
    let mut env = env;
    env.set("GITHUB_ACTIONS", "true");
    let out = env.run(&["access-token"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "at%0Aabc\n");
    assert!(out.stderr.ends_with("\n::add-mask::at%250Aabc\n"), "{out:?}");
    assert!(!out.stderr.contains("::add-mask::at%0Aabc"), "{out:?}");
}

// ---------------------------------------------------------------------------
// --server (issue 18, item 17): the broker, not the local store

/// A `serve` whose store holds a set with `expires_in_secs` left, its
/// Withings `withings`, and the loop idle for the test's length.
fn given_server(withings: &Upstream, expires_in_secs: i64) -> (TestEnv, ServeProcess) {
    let mut env = given_store_expiring_in(expires_in_secs);
    env.withings(&withings.uri()).serve_credentials();
    let server = env.serve(&["--check-interval", "1h"]);
    (env, server)
}

/// A user on another machine: no store, no Withings credentials, only the
/// server (by WITHINGS_TOKEN_SERVER) and `token` as `variable`.
fn given_server_reader(server: &ServeProcess, variable: &str, token: &str) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("WITHINGS_TOKEN_SERVER", format!("http://{}", server.addr))
        .set(variable, token);
    env
}

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
fn exec_with_server_runs_the_command_with_the_brokers_token() {
    let withings = silent_withings();
    let (_env, server) = given_server(&withings, 3 * 3600);
    let reader = given_server_reader(&server, "WITHINGS_TOKEN_READER_TOKEN", READER_TOKEN);
    let script = r#"printf '%s|%s|%s' "$WITHINGS_ACCESS_TOKEN" "$WITHINGS_USERID" "${WITHINGS_TOKEN_EXPIRES_AT:+set}""#;

    let out = reader.run(&["exec", "--", "sh", "-c", script]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{OLD_ACCESS}|363|set"));
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
