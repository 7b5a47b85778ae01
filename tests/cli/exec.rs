//! `exec`: runs a command with the access token in its environment (after a
//! refresh below `--min-ttl`), exits with the command's code, says 127 or
//! 126 when it cannot run, and masks the token under GitHub Actions.

use crate::support::*;

// ---------------------------------------------------------------------------
// exec

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

/// A mistyped command on a set that is due is found out before the token
/// is rotated: "not found", and nothing sent.
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
