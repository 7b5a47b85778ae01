//! Command lines the binary cannot take: clap's own message and exit 2, a
//! `next:` line after it in text, the error object on stdout with `--json`,
//! and flags outside their bounds.

use crate::support::*;

// ---------------------------------------------------------------------------
// exit 2

#[test]
fn unknown_flag_is_a_usage_error_with_exit_2() {
    let env = TestEnv::new();
    let out = env.run(&["refresh", "--bogus", "--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    // With --json, a reader of stdout gets the error object too.
    let error = &out.json()["error"];
    assert_eq!(error["code"], "USAGE_ERROR", "{out:?}");
    assert_eq!(error["action"], "see `withings-token refresh --help`", "{out:?}");
    assert!(out.stderr.contains("unexpected argument '--bogus'"), "{}", out.stderr);
    assert!(out.stderr.contains("--help"), "{}", out.stderr);
    assert!(!env.store_path().exists());
}

#[test]
fn a_usage_error_in_text_carries_its_code_and_a_next_line_after_clap_s_own_text() {
    let env = TestEnv::new();
    let out = env.run(&["status", "--bogus"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: unexpected argument '--bogus' found [USAGE_ERROR]\n\nUsage: withings-token status [OPTIONS]\n\nFor more information, try '--help'.\n  next: see `withings-token status --help`\n"
    );
    let bare = env.run(&[]);
    assert_eq!(bare.code, 2, "{bare:?}");
    assert!(
        bare.stderr.contains("Usage: withings-token"),
        "clap's help first: {bare:?}"
    );
    assert!(
        bare.stderr
            .ends_with("error: no subcommand given [USAGE_ERROR]\n  next: see `withings-token --help`\n"),
        "{bare:?}"
    );
}

#[test]
fn malformed_duration_is_a_usage_error_with_exit_2() {
    let env = TestEnv::new();
    let out = env.run(&["status", "--buffer", "1y"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("unknown unit `y`"), "{}", out.stderr);
}

#[test]
fn missing_subcommand_is_a_usage_error_with_exit_2() {
    let env = TestEnv::new();
    let out = env.run(&[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("Usage: withings-token"), "{}", out.stderr);
}

#[test]
fn malformed_flags_are_usage_errors_with_clap_messages() {
    let env = TestEnv::new();
    let cases: [(&[&str], &str); 14] = [
        (&["--timeout", "5x", "status"], "--timeout"),
        (&["status", "--timeout=-1s"], "--timeout"),
        (&["refresh", "--timeout", "1.5s"], "--timeout"),
        (&["refresh", "--timeout", ""], "--timeout"),
        (&["refresh", "--buffer", "soon"], "--buffer"),
        (&["status", "--buffer", "1y"], "--buffer"),
        (
            &["refresh", "--dry-run", "--buffer", "99999999999999999999h"],
            "--buffer",
        ),
        (&["--retries", "many", "refresh"], "--retries"),
        (&["refresh", "--retries=-1"], "--retries"),
        (&["refresh", "--retries", "4294967296"], "--retries"),
        (&["--output", "yaml", "status"], "--output"),
        (&["status", "-o", "xml"], "--output"),
        (&["refresh", "--output", "JSON "], "--output"),
        (&["--json", "refresh", "--retry-delay", "later"], "--retry-delay"),
    ];
    for (args, flag) in cases {
        let out = env.run(args);
        let what = args.join(" ");
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: invalid value '"),
            "{what}: clap's message: {}",
            out.stderr
        );
        assert!(out.stderr.contains(flag), "{what}: names {flag}: {}", out.stderr);
        assert!(
            out.stderr.contains("For more information, try '--help'."),
            "{what}: {}",
            out.stderr
        );
        if args.contains(&"--json") {
            assert_eq!(
                out.json()["error"]["code"],
                "USAGE_ERROR",
                "{what}: the JSON error object"
            );
        } else {
            assert_eq!(out.stdout, "", "{what}: nothing on stdout");
        }
    }
    // clap lists the formats it would take.
    let out = env.run(&["--output", "yaml", "status"]);
    assert!(
        out.stderr.contains("[possible values: table, json, env]"),
        "{}",
        out.stderr
    );
    assert!(!env.store_path().exists(), "a usage error touches nothing");
}

#[test]
fn out_of_bounds_flags_are_usage_errors() {
    let env = TestEnv::new();
    for args in [
        &["--timeout", "0", "status"][..],
        &["--timeout", "0s", "status"],
        &["--timeout", "0ms", "status"],
        &["--retries", "11", "status"],
        &["--retry-delay", "6m", "status"],
        &["--lock-timeout", "100000000d", "status"],
        &["status", "--buffer", "100000000d"],
        &["refresh", "--buffer", "367d"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains("invalid value"), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
    }
}

// ---------------------------------------------------------------------------
// usage errors in JSON

#[test]
fn usage_errors_with_json_print_the_error_object_on_stdout() {
    let env = TestEnv::new();
    for args in [
        &["--json", "--timeout", "0", "status"][..],
        &["status", "--json", "--no-such-flag"],
        &["-o", "json", "--retries", "99", "status"],
        &["--output=json", "status", "--buffer", "367d"],
        &["-ojson", "no-such-command"],
        &["--output", "json", "refresh", "--no-railway", "--trigger-deployment"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        let report = out.json();
        let error = report["error"].as_object().expect("error object");
        assert_eq!(error.len(), 3, "{report}");
        assert_eq!(error["code"], "USAGE_ERROR");
        let help = if args.contains(&"status") {
            "see `withings-token status --help`"
        } else if args.contains(&"refresh") {
            "see `withings-token refresh --help`"
        } else {
            "see `withings-token --help`"
        };
        assert_eq!(error["action"], help, "{args:?}");
        let message = error["message"].as_str().expect("message");
        assert!(!message.is_empty() && !message.starts_with("error:"), "{message}");
        assert!(
            out.stdout.contains("\n  \""),
            "pretty-printed like the other JSON: {}",
            out.stdout
        );
        assert!(
            out.stderr.contains(message),
            "clap's text stays on stderr: {}",
            out.stderr
        );
    }
    // Without JSON, stdout stays empty; help and version are no errors.
    let out = env.run(&["--timeout", "0", "status"]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    let out = env.run(&["--json", "--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Usage: withings-token"), "{}", out.stdout);
    let out = env.run(&["--json", "--version"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with("withings-token "), "{}", out.stdout);
}
