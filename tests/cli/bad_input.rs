//! Bad input of every kind is refused clearly and harms nothing: corrupt
//! store files (exit 3 naming the file, left byte-identical, nothing sent
//! upstream), unusable store locations, a store others can read, malformed
//! flags (clap's exit 2), seed times that are not RFC 3339, and an env file
//! full of quoting and layout that `refresh` must rewrite line for line.

use crate::support::*;

use std::os::unix::fs::PermissionsExt;

use wiremock::matchers::{body_string_contains, method};

fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut bytes = vec![b'['; depth];
    bytes.extend(std::iter::repeat_n(b']', depth));
    bytes
}

fn valid_store_with(extra_key: &str, extra: Value) -> Vec<u8> {
    let mut store = json!({
        "version": 1,
        "generation": 3,
        "tokens": {
            "access_token": "stored-access-token",
            "refresh_token": "stored-refresh-token",
            "expires_at": "2020-01-01T00:00:00Z",
            "last_refreshed": "2019-12-31T21:00:00Z",
        },
    });
    store[extra_key] = extra;
    serde_json::to_vec_pretty(&store).expect("json")
}

/// Store files that are not stores, by name.
fn corrupt_stores() -> Vec<(&'static str, Vec<u8>)> {
    let mut binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    binary.extend_from_slice(b"\xff\xfe\xc3\x28");
    let half_store = {
        let whole = valid_store_with("pad", json!(null));
        whole[..whole.len() / 2].to_vec()
    };
    let mut huge_valid = valid_store_with("pad", json!("x".repeat(1024 * 1024 + 10)));
    huge_valid.push(b'\n');
    let mut huge_whitespace = b"{\"version\": 1, \"generation\": 1}".to_vec();
    huge_whitespace.extend(std::iter::repeat_n(b' ', 2 * 1024 * 1024));
    vec![
        ("empty", Vec::new()),
        ("whitespace only", b"  \n\t\n".to_vec()),
        ("binary", binary),
        ("NUL bytes", vec![0u8; 64]),
        ("truncated store", half_store),
        ("JSON array", b"[1, 2, 3]".to_vec()),
        ("JSON string", b"\"tokens\"".to_vec()),
        ("JSON null", b"null".to_vec()),
        (
            "object of another program",
            br#"{"access_token": "a", "refresh_token": "r"}"#.to_vec(),
        ),
        ("version as a string", br#"{"version": "1", "generation": 1}"#.to_vec()),
        ("negative generation", br#"{"version": 1, "generation": -1}"#.to_vec()),
        ("no generation", br#"{"version": 1}"#.to_vec()),
        (
            "refresh token as a number",
            br#"{"version": 1, "generation": 1, "tokens": {"refresh_token": 42}}"#.to_vec(),
        ),
        (
            "expiry not a time",
            br#"{"version": 1, "generation": 1, "tokens": {"refresh_token": "r", "expires_at": "tomorrow"}}"#.to_vec(),
        ),
        (
            "tokens as a list",
            br#"{"version": 1, "generation": 1, "tokens": ["a", "r"]}"#.to_vec(),
        ),
        ("newer format version", br#"{"version": 99, "generation": 1}"#.to_vec()),
        ("10000 nested arrays", nested_arrays(10_000)),
        ("huge valid-looking store (>1 MiB)", huge_valid),
        ("huge whitespace padding (>1 MiB)", huge_whitespace),
    ]
}

#[test]
fn corrupt_store_files_are_refused_untouched_and_nothing_is_sent() {
    let withings = silent_withings();
    let commands: [&[&str]; 6] = [
        &["status"],
        &["status", "--json"],
        &["refresh"],
        &["refresh", "--json"],
        &["refresh", "--if-needed"],
        &["refresh", "--dry-run"],
    ];
    for (name, bytes) in corrupt_stores() {
        let mut env = TestEnv::new();
        env.withings(&withings.uri());
        // A valid seed in the environment must not paper over a corrupt store.
        env.set("WITHINGS_REFRESH_TOKEN", "seed-refresh-token");
        env.write_store_bytes(&bytes);
        let store = env.store_path();
        let before_entries = env.store_dir_entries();
        for args in commands {
            let out = env.run(args);
            let what = format!("{name}: {}", args.join(" "));
            assert_eq!(out.code, 3, "{what}: exit code\nstderr: {}", out.stderr);
            assert!(
                out.stderr.contains(&store.display().to_string()),
                "{what}: stderr names the file: {}",
                out.stderr
            );
            assert!(out.stderr.contains("[CONFIGURATION_ERROR]"), "{what}: {}", out.stderr);
            if args.contains(&"--json") {
                let report: Value = serde_json::from_str(&out.stdout)
                    .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", out.stdout));
                assert_eq!(report["error"]["code"], "CONFIGURATION_ERROR", "{what}");
                assert!(
                    report["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(&store.display().to_string()),
                    "{what}: {report}"
                );
            }
            assert!(env.store_bytes() == bytes, "{what}: the store file changed");
            assert_eq!(
                env.store_dir_entries(),
                before_entries,
                "{what}: files appeared beside the store"
            );
        }
    }
    withings.verify();
}

#[test]
fn unreadable_store_directory_is_a_configuration_error() {
    let withings = silent_withings();
    let env = given_expired_store(&withings.uri());
    let dir = env.store_path().parent().expect("dir").to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    // root reads through any mode: the runs are a user's (see `run_as_a_user`).
    let outcomes: Vec<(String, Run)> = [&["status"][..], &["refresh"], &["refresh", "--json"]]
        .into_iter()
        .map(|args| (args.join(" "), env.run_as_a_user(args)))
        .collect();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod back");
    for (what, out) in outcomes {
        assert_eq!(out.code, 3, "{what}: {}", out.stderr);
        assert!(out.stderr.contains("tokens.json"), "{what}: {}", out.stderr);
        assert!(
            out.stderr.to_lowercase().contains("permission denied"),
            "{what}: {}",
            out.stderr
        );
    }
    withings.verify();
}

/// The same failure, in forms that even root cannot read through.
#[test]
fn store_paths_that_cannot_be_read_are_configuration_errors() {
    let withings = silent_withings();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let a_directory = env.home().join("a-directory");
    std::fs::create_dir_all(&a_directory).expect("dir");
    let a_file = env.home().join("a-file");
    std::fs::write(&a_file, "not a directory").expect("file");
    let under_a_file = a_file.join("tokens.json");
    for store in [&a_directory, &under_a_file] {
        let store_arg = store.display().to_string();
        for args in [&["status"][..], &["refresh"], &["refresh", "--json"]] {
            let mut full = vec!["--store", store_arg.as_str()];
            full.extend_from_slice(args);
            let out = env.run(&full);
            let what = full.join(" ");
            assert_eq!(out.code, 3, "{what}: {}", out.stderr);
            assert!(
                out.stderr.contains(&store_arg),
                "{what}: names the store: {}",
                out.stderr
            );
            assert!(out.stderr.contains("[CONFIGURATION_ERROR]"), "{what}: {}", out.stderr);
        }
    }
    assert_eq!(std::fs::read_to_string(&a_file).expect("file"), "not a directory");
    assert_eq!(std::fs::read_dir(&a_directory).expect("dir").count(), 0);
    withings.verify();
}

#[test]
fn a_store_others_can_read_is_warned_about_and_saved_0600() {
    let withings = withings_rotating(OLD_REFRESH);
    let env = given_expired_store(&withings.uri());
    let store = env.store_path();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).expect("chmod 644");

    let status = env.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stderr.contains("readable by group or others") && status.stderr.contains(&store.display().to_string()),
        "status warns and names the file: {}",
        status.stderr
    );
    assert_eq!(file_mode(&store), 0o644, "status writes nothing");

    let quiet = env.run(&["status", "-q"]);
    assert_eq!(quiet.code, 0);
    assert_eq!(quiet.stderr, "", "-q silences the warning");

    let refresh = env.run(&["refresh", "--json"]);
    assert_eq!(refresh.code, 0, "{}", refresh.stderr);
    assert!(
        refresh.stderr.contains("readable by group or others"),
        "{}",
        refresh.stderr
    );
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert_eq!(file_mode(&store), 0o600, "the save rewrote the store 0600");

    let again = env.run(&["status"]);
    assert_eq!(again.code, 0);
    assert!(
        !again.stderr.contains("readable"),
        "no warning once private: {}",
        again.stderr
    );
    withings.verify();
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
fn refresh_rewrites_a_messy_env_file_keeping_every_other_line() {
    let withings = withings_rotating("old-refresh-abc");
    withings.mount(
        Mock::given(method("POST"))
            .and(body_string_contains("client_secret=test-client-secret-value"))
            .respond_with(ResponseTemplate::new(500))
            .expect(1)
            .named("the secret came from the env file's single-quoted value"),
    );
    let mut env = TestEnv::new();
    // Credentials and tokens come from the env file only.
    env.set("WITHINGS_API_URL", withings.uri());
    let original = concat!(
        "# Withings app (keep this file private)\r\n",
        "export WITHINGS_CLIENT_ID=\"test-client-id\"\r\n",
        "WITHINGS_CLIENT_SECRET='test-client-secret-value'\r\n",
        "\r\n",
        "   # indented comment: WITHINGS_REFRESH_TOKEN=not-this-one\r\n",
        "#WITHINGS_ACCESS_TOKEN=commented-out\r\n",
        "export WITHINGS_REFRESH_TOKEN=\"old-refresh-abc\"\r\n",
        "WITHINGS_ACCESS_TOKEN = old-access-000\r\n",
        "GREETING=\"hello world # not a comment\"\r\n",
        "SPACED = 'a value with spaces'\r\n",
        "DOLLAR='$HOME stays literal'\r\n",
        "EMPTY=\r\n",
        "WITHINGS_REFRESH_TOKEN=old-refresh-abc\r\n",
        "WITHINGS_REFRESH_TOKEN_BACKUP=keep-me\r\n",
        "  export WITHINGS_SCOPE=user.info,user.metrics\r\n",
        "LAST=no-newline-at-the-end",
    );
    let env_path = env.write_env_file(original);

    let out = env.run(&["refresh", "--json", "--retries", "0"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["source"], "env");
    assert_eq!(report["env_file_updated"], env_path.display().to_string());
    let store = env.store_json();
    let tokens = &store["tokens"];
    assert_eq!(tokens["refresh_token"], "new-refresh-xyz");
    let expires_at = tokens["expires_at"].as_str().expect("expires_at");
    let last_refreshed = tokens["last_refreshed"].as_str().expect("last_refreshed");

    let expected = format!(
        concat!(
            "# Withings app (keep this file private)\r\n",
            "export WITHINGS_CLIENT_ID=\"test-client-id\"\r\n",
            "WITHINGS_CLIENT_SECRET='test-client-secret-value'\r\n",
            "\r\n",
            "   # indented comment: WITHINGS_REFRESH_TOKEN=not-this-one\r\n",
            "#WITHINGS_ACCESS_TOKEN=commented-out\r\n",
            "export WITHINGS_REFRESH_TOKEN=new-refresh-xyz\r\n",
            "WITHINGS_ACCESS_TOKEN=new-access-123\r\n",
            "GREETING=\"hello world # not a comment\"\r\n",
            "SPACED = 'a value with spaces'\r\n",
            "DOLLAR='$HOME stays literal'\r\n",
            "EMPTY=\r\n",
            "WITHINGS_REFRESH_TOKEN=new-refresh-xyz\r\n",
            "WITHINGS_REFRESH_TOKEN_BACKUP=keep-me\r\n",
            "  export WITHINGS_SCOPE=user.info,user.metrics\r\n",
            "LAST=no-newline-at-the-end\r\n",
            "WITHINGS_TOKEN_EXPIRES_AT={expires_at}\r\n",
            "WITHINGS_TOKEN_LAST_REFRESHED={last_refreshed}\r\n",
        ),
        expires_at = expires_at,
        last_refreshed = last_refreshed,
    );
    let rewritten = std::fs::read_to_string(&env_path).expect("read .env");
    assert_eq!(rewritten, expected);

    // The rewritten file is read back as it should be: the next run uses the
    // store (same set), and the secret still comes from the env file (the
    // catch-all 500 above proves it was sent).
    let status = env.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status = status.json();
    assert_eq!(status["source"], "store");
    assert_eq!(status["expires_at"], expires_at);
    let again = env.run(&["refresh", "--json", "--retries", "0"]);
    assert_eq!(again.code, 5, "the catch-all answers 500: {}", again.stderr);
    assert_eq!(std::fs::read_to_string(&env_path).expect("read .env"), expected);
    withings.verify();
}
