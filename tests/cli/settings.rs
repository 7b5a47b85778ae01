//! Settings a run cannot use are configuration errors (exit 3) that name the
//! variable and send nothing: plain HTTP to a remote API, a missing client
//! secret, seed times that are not RFC 3339, an absurd refresh buffer.

use crate::support::*;

// ---------------------------------------------------------------------------
// exit 3

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
fn seed_times_that_are_not_rfc3339_name_the_variable() {
    let withings = silent_withings();
    let bad_values = [
        "tomorrow",
        "2025-01-15",
        "2025-01-15T12:00:00",
        "2025-13-01T00:00:00Z",
        "1736942400",
        "15/01/2025 12:00",
    ];
    for var in ["WITHINGS_TOKEN_EXPIRES_AT", "WITHINGS_TOKEN_LAST_REFRESHED"] {
        for value in bad_values {
            // From the process environment...
            let mut env = TestEnv::new();
            env.withings(&withings.uri())
                .set("WITHINGS_REFRESH_TOKEN", "seed-refresh-token")
                .set(var, value);
            // ...and from an env file.
            let mut file_env = TestEnv::new();
            file_env.withings(&withings.uri());
            file_env.write_env_file(&format!(
                "WITHINGS_REFRESH_TOKEN=seed-refresh-token\n{var}=\"{value}\"\n"
            ));
            for (origin, env) in [("process", &env), ("env file", &file_env)] {
                for args in [
                    &["status"][..],
                    &["refresh"],
                    &["refresh", "--dry-run"],
                    &["status", "--json"],
                ] {
                    let out = env.run(args);
                    let what = format!("{var}={value} ({origin}): {}", args.join(" "));
                    assert_eq!(out.code, 3, "{what}: {}", out.stderr);
                    assert!(out.stderr.contains(var), "{what}: names the variable: {}", out.stderr);
                    assert!(out.stderr.contains("RFC 3339"), "{what}: {}", out.stderr);
                    assert!(!env.store_path().exists(), "{what}: no store was written");
                }
            }
        }
    }
    withings.verify();
}

#[test]
fn an_absurd_refresh_buffer_variable_is_a_configuration_error_not_a_panic() {
    let mut env = given_store_expiring_in(3600);
    env.set("WITHINGS_REFRESH_BUFFER", "100000000d");
    for args in [&["status"][..], &["status", "--json"], &["refresh", "--if-needed"]] {
        let out = env.run(args);
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(out.stderr.contains("WITHINGS_REFRESH_BUFFER"), "{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}
