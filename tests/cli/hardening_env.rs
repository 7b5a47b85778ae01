//! The env file and the command line, hardened: env-format values that bash
//! `source`s back exactly without running anything, a `.env` written for
//! python-dotenv that no longer stops every command, a bad line of ours named
//! by its real number, flags with bounds, an offline `status` that ignores
//! unusable URLs, and usage errors that reach a JSON reader.
//! `cargo test --features failpoints --test cli hardening_env::`

use crate::support::*;

use std::process::Command as StdCommand;

use withings_token::envfile::format_value;

// ---------------------------------------------------------------------------
// env-format values

/// Values a token must never be able to smuggle into a shell, plus a
/// deterministic spread of mixes of the characters quoting cares about.
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "`touch pwned-backtick`",
        "$(touch pwned-dollar)",
        "a'b",
        "it's $HOME",
        "'; touch pwned-quote; '",
        "\"; touch pwned-dquote; \"",
        "a b  c",
        "back\\slash",
        "trailing\\",
        "\\\\",
        "#not a comment",
        "a #not a comment",
        "${HOME}",
        "$HOME",
        "\\$HOME",
        "\\`x\\`",
        "'`touch pwned-mixed`'",
        "~/tilde",
        "!history",
        "*glob?",
        "é ü 日本",
        "",
        " ",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let alphabet: Vec<char> = "'\"\\$`# {}()!~;&|<>*?=a".chars().collect();
    let mut seed: u64 = 0x5eed;
    for _ in 0..300 {
        let mut value = String::new();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        for _ in 0..(seed >> 60) {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            value.push(alphabet[((seed >> 33) % alphabet.len() as u64) as usize]);
        }
        values.push(value);
    }
    values
}

#[test]
fn hostile_env_values_are_sourced_back_exactly_by_bash_and_run_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let values = hostile_values();
    let mut file = String::from("# written by format_value\n");
    for (i, value) in values.iter().enumerate() {
        file.push_str(&format!("K{i}={}\n", format_value(value).expect("printable")));
    }
    let env_path = dir.path().join("tokens.env");
    std::fs::write(&env_path, &file).expect("write env file");
    let names: Vec<String> = (0..values.len()).map(|i| format!("\"$K{i}\"")).collect();
    let script = format!("set -a; source ./tokens.env; printf '%s\\0' {}", names.join(" "));
    let output = StdCommand::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-home")
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let read_back: Vec<&str> = stdout.split_terminator('\0').collect();
    assert_eq!(read_back.len(), values.len(), "{file}");
    for (value, back) in values.iter().zip(&read_back) {
        assert_eq!(back, value, "as written: {}", format_value(value).unwrap());
    }
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["tokens.env"], "a value ran a command");
}

#[test]
fn control_characters_are_refused_in_env_format() {
    for value in ["line\nINJECTED=1", "cr\r", "nul\0", "del\u{7f}"] {
        assert!(format_value(value).is_err(), "{value:?}");
    }
}

/// A Withings that rotates [`OLD_REFRESH`] into a pair whose refresh token
/// holds a newline (as a hostile or broken server might send), once.
fn withings_sending_a_newline() -> Upstream {
    let withings = Upstream::start();
    withings.mount(
        refresh_of(OLD_REFRESH)
            .respond_with(new_tokens(NEW_ACCESS, "new-refresh\nINJECTED=1"))
            .expect(1),
    );
    withings
}

#[test]
fn a_token_with_a_newline_is_never_written_into_the_env_file() {
    let withings = withings_sending_a_newline();
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let original = format!("# mine\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\nWITHINGS_ACCESS_TOKEN=old-access\n");
    let env_path = env.write_env_file(&original);

    let out = env.run(&["refresh", "--output-env", "--retries", "0"]);
    // Exit 6: the set is saved, but neither copy (env file, stdout) could take it.
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("[ENV_FILE_UPDATE_FAILED]"), "{out:?}");
    assert!(out.stderr.contains("[OUTPUT_FAILED]"), "{out:?}");
    // The set is kept in the store, where JSON escapes the newline...
    assert_eq!(env.stored_refresh_token(), "new-refresh\nINJECTED=1", "{out:?}");
    // ...and never reaches the env file or the env output as a line of its own.
    assert_eq!(std::fs::read_to_string(&env_path).expect("read .env"), original);
    assert!(!out.stdout.lines().any(|l| l.starts_with("INJECTED")), "{out:?}");
    assert!(out.stderr.contains("WITHINGS_REFRESH_TOKEN"), "names the key: {out:?}");
    assert!(!out.stderr.contains("INJECTED"), "echoes no value: {out:?}");
    withings.verify();
}

// ---------------------------------------------------------------------------
// .env files written for python-dotenv

fn seed_lines() -> &'static str {
    "WITHINGS_REFRESH_TOKEN=seed-refresh\nWITHINGS_TOKEN_EXPIRES_AT=2099-01-01T00:00:00Z\nWITHINGS_TOKEN_LAST_REFRESHED=2098-12-31T21:00:00Z\n"
}

#[test]
fn a_dot_env_written_for_python_dotenv_is_read_as_python_dotenv_reads_it_without_a_warning() {
    let env = TestEnv::new();
    let text = format!(
        "\u{feff}# the app's settings\nAPP_NAME=My Secret App\nmy-key=hunter2\nDEBUG\nGREETING=\"tab\\tzq9here\"\n{}",
        seed_lines()
    );
    env.write_env_file(&text);
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["source"], "env");
    assert_eq!(report["expires_at"], "2099-01-01T00:00:00Z");
    assert_eq!(out.stderr, "", "python-dotenv reads every line: nothing to warn about");
}

#[test]
fn a_setting_of_ours_written_unquoted_with_spaces_is_taken_verbatim_up_to_its_comment() {
    let mut env = TestEnv::new();
    env.set("RAILWAY_TOKEN", "t")
        .set("RAILWAY_PROJECT_ID", "p")
        .set("RAILWAY_SERVICE_ID", "s");
    env.write_env_file(&format!(
        "RAILWAY_ENVIRONMENT_NAME=pr 42 review   # the review app\n{}",
        seed_lines()
    ));
    let out = env.run(&["refresh", "--dry-run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["railway"],
        "service s (project p, environment named pr 42 review)"
    );
    assert_eq!(out.stderr.matches("ignored line").count(), 0, "{out:?}");
}

#[test]
fn lines_no_dotenv_reader_takes_are_skipped_with_one_warning_naming_their_numbers() {
    let env = TestEnv::new();
    let text = format!(
        "APP_NAME=My App\nNOTE=\"zq9 never closed\nPAIR=\"x\" zq9y\n{}",
        seed_lines()
    );
    env.write_env_file(&text);
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let warnings: Vec<&str> = out.stderr.lines().filter(|l| l.contains("ignored line")).collect();
    assert_eq!(warnings.len(), 1, "one warning: {}", out.stderr);
    assert!(warnings[0].contains("line(s) 2, 3 of"), "{}", out.stderr);
    assert!(!out.stderr.contains("zq9"), "echoes no content: {}", out.stderr);
    // `--quiet` silences the warning.
    let quiet = env.run(&["status", "--json", "--quiet"]);
    assert_eq!(quiet.code, 0);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn a_refresh_keeps_the_lines_only_python_dotenv_reads_byte_for_byte() {
    let withings = withings_rotating(OLD_REFRESH);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let others = "APP_NAME=My App\r\nexport GREETING = hello there   # hi\r\nDEBUG\r\nmy-key=1\r\n";
    let env_path = env.write_env_file(&format!("{others}WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\r\n"));

    let out = env.run(&["refresh", "--retries", "0"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("ignored line"), "{out:?}");
    let text = std::fs::read_to_string(&env_path).expect("read .env");
    assert!(
        text.starts_with(&format!("{others}WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\r\n")),
        "{text:?}"
    );
    withings.verify();
}

#[test]
fn a_bad_line_of_ours_names_its_real_line_number_and_no_value() {
    let env = TestEnv::new();
    env.write_env_file("# header\nAPP=1\n\nWITHINGS_REFRESH_TOKEN=\"s3cret-never-closed\nOTHER=2\n");
    let out = env.run(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("line 4 sets WITHINGS_REFRESH_TOKEN"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("./.env (found in the working directory)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
}

#[test]
fn a_non_utf8_dot_env_found_in_the_working_directory_says_where_it_came_from() {
    let env = TestEnv::new();
    let bytes = b"APP_NAME=Caf\xe9\nWITHINGS_REFRESH_TOKEN=r\n";
    std::fs::write(env.work_dir().join(".env"), bytes).expect("write .env");
    let out = env.run(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("./.env (found in the working directory)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("not UTF-8"), "{}", out.stderr);
    assert!(out.stderr.contains("`--env-file PATH`"), "{}", out.stderr);
    assert!(out.stderr.contains("`--no-env-file`"), "{}", out.stderr);
    assert!(!out.stderr.contains("given with `--env-file`"), "{}", out.stderr);

    // Named explicitly, the same file is blamed on the flag.
    let other = env.work_dir().join("other.env");
    std::fs::write(&other, bytes).expect("write other.env");
    let out = env.run(&["--env-file", other.to_str().expect("utf-8 path"), "status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("given with `--env-file`"), "{}", out.stderr);
}

#[test]
fn a_rewritten_env_file_with_a_byte_order_mark_keeps_one_token_line() {
    let withings = withings_rotating(OLD_REFRESH);
    let mut env = TestEnv::new();
    env.withings(&withings.uri());
    let env_path = env.write_env_file(&format!(
        "\u{feff}WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\nAPP_NAME=My App\n"
    ));
    let out = env.run(&["refresh", "--retries", "0"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&env_path).expect("read .env");
    assert!(
        text.starts_with(&format!(
            "\u{feff}WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\nAPP_NAME=My App\n"
        )),
        "{text:?}"
    );
    assert_eq!(text.matches("WITHINGS_REFRESH_TOKEN=").count(), 1, "{text:?}");
    withings.verify();
}

// ---------------------------------------------------------------------------
// flag bounds

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

// ---------------------------------------------------------------------------
// status is offline

#[test]
fn status_works_whatever_the_urls_say() {
    let mut env = given_store_expiring_in(7200);
    env.set("WITHINGS_API_URL", "http://example.com")
        .set("WITHINGS_AUTHORIZE_URL", "not a url")
        .set("RAILWAY_API_URL", "ftp://example.com");
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["source"], "store");

    // A command that uses the URL still refuses it, before touching the store.
    env.set("WITHINGS_CLIENT_ID", "id")
        .set("WITHINGS_REDIRECT_URI", "https://example.com/cb");
    let before = env.store_bytes();
    let out = env.run(&["auth-url", "--json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "CONFIGURATION_ERROR");
    assert!(
        out.stderr.contains("WITHINGS_AUTHORIZE_URL is not usable"),
        "{}",
        out.stderr
    );
    assert_eq!(env.store_bytes(), before);
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
