//! What a person is told with accounts: the next command keeps the
//! account it was given, and `refresh --all` refuses a format that holds
//! one set only.

use crate::support::*;

#[test]
fn auth_urls_next_command_names_the_account_it_was_given() {
    let (sandbox, env) = given_sandbox();
    let out = env.run(&["auth-url", "--account", "carol"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("  withings-token --account carol exchange '<the URL you were redirected to>'\n"),
        "{out:?}"
    );
    drop(sandbox);
}

#[test]
fn refresh_all_with_env_lines_is_refused_before_anything_is_sent() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let out = env.run(&["refresh", "--all", "--output-env"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.stderr.lines().next().unwrap_or_default(),
        "error: --all refreshes several accounts, whose sets cannot be one set of env lines; nothing was sent [CONFIGURATION_ERROR]"
    );
    assert_eq!(out.stdout, "");
    withings.verify();
}

/// An account whose consent was begun (or refused) holds no set: `refresh
/// --all` says it awaits consent and the household's cron line still
/// exits 0.
#[test]
fn refresh_all_passes_over_an_account_awaiting_consent() {
    let (sandbox, env) = given_sandbox();
    sandbox.authorise(&env);
    let out = env.run(&["auth-url", "--account", "carol"]);
    assert_eq!(out.code, 0, "{out:?}");

    let out = env.run(&["refresh", "--all", "--no-railway", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rows = out.json()["accounts"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "{out:?}");
    assert_eq!(rows[0]["account"], "default");
    assert_eq!(rows[0]["outcome"], "refreshed");
    assert_eq!(
        rows[1],
        json!({"account": "carol", "outcome": "awaiting_consent", "exit": 0})
    );
    assert_eq!(out.stderr, "", "{out:?}");
}
