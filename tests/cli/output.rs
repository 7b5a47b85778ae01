//! What a run prints: the table, `--json` (tokens masked unless
//! `--reveal`), `--output env` and `export` (the four lines, values that
//! bash sources back exactly), `--quiet` and `-vv`, GitHub Actions' masks,
//! the words a report uses, and a stdout that cannot be written (a closed
//! pipe, a full disk: OUTPUT_FAILED, never a panic, the set safe in the
//! store).

use crate::support::*;

use std::fs::File;
use std::process::{Command as StdCommand, Output, Stdio};

use withings_token::format_value;

// ---------------------------------------------------------------------------
// formats

#[test]
fn output_env_prints_exactly_the_four_lines() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(2);
    let env = given_expired_store(&withings.uri());

    // Both the scripts' form and the global-first form.
    for args in [["refresh", "--output-env"], ["--output-env", "refresh"]] {
        let out = env.run_fast(&args);
        assert_eq!(out.code, 0, "{out:?}");
        let tokens = &env.store_json()["tokens"];
        let expected = format!(
            "WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\n\
             WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n\
             WITHINGS_TOKEN_EXPIRES_AT={}\n\
             WITHINGS_TOKEN_LAST_REFRESHED={}\n",
            rfc3339(time(&tokens["expires_at"])),
            rfc3339(time(&tokens["last_refreshed"])),
        );
        assert_eq!(out.stdout, expected);
        assert_eq!(
            out.stdout,
            format!(
                "WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\nWITHINGS_REFRESH_TOKEN={NEW_REFRESH}\nWITHINGS_TOKEN_EXPIRES_AT={}\nWITHINGS_TOKEN_LAST_REFRESHED={}\n",
                tokens["expires_at"].as_str().unwrap(),
                tokens["last_refreshed"].as_str().unwrap(),
            )
        );
        assert_no_secrets(&out, &[NEW_ACCESS, NEW_REFRESH]);
    }
    withings.verify();
}

#[test]
fn json_masks_tokens_to_their_last_three_characters() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--json"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["access_token"], "token_*****123");
    assert_eq!(report["refresh_token"], "token_*****xyz");
    for secret in [NEW_ACCESS, NEW_REFRESH, OLD_REFRESH, "test-client-secret-value"] {
        assert!(!out.stdout.contains(secret), "stdout leaks {secret}");
    }
    assert_no_secrets(&out, &[NEW_ACCESS, NEW_REFRESH]);

    // The table masks them too.
    let out = env.run_fast(&["refresh", "--if-needed", "--buffer", "1m"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("token_*****xyz"), "{}", out.stdout);
    assert!(!out.stdout.contains(NEW_REFRESH), "{}", out.stdout);
    withings.verify();
}

#[test]
fn reveal_shows_the_tokens_in_json() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--json", "--reveal"]);

    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["access_token"], NEW_ACCESS);
    assert_eq!(report["refresh_token"], NEW_REFRESH);
    assert_no_secrets(&out, &[NEW_ACCESS, NEW_REFRESH]);
    withings.verify();
}

#[test]
fn export_prints_the_stored_set_as_the_four_env_lines_and_sends_nothing() {
    let env = given_store_expiring_in(3 * 3600);
    let store = env.store_json();

    let out = env.run(&["export", "--quiet"]);

    assert_eq!(out.code, 0, "{out:?}");
    let tokens = &store["tokens"];
    let expected = format!(
        "WITHINGS_ACCESS_TOKEN={OLD_ACCESS}\nWITHINGS_REFRESH_TOKEN={OLD_REFRESH}\nWITHINGS_TOKEN_EXPIRES_AT={}\nWITHINGS_TOKEN_LAST_REFRESHED={}\n",
        tokens["expires_at"].as_str().unwrap(),
        tokens["last_refreshed"].as_str().unwrap()
    );
    assert_eq!(out.stdout, expected);
    assert_eq!(env.store_json(), store, "nothing written");

    let empty = TestEnv::new();
    let out = empty.run(&["export"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("holds no token set to export"), "{out:?}");
}

// ---------------------------------------------------------------------------
// env format

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

#[test]
fn a_token_with_a_control_character_is_kept_in_the_store_and_never_written_in_env_format() {
    let hostile = "new-refresh\nWITHINGS_CLIENT_SECRET=stolen";
    let withings = withings_answering(new_tokens(NEW_ACCESS, hostile)).times(1);
    let env = given_expired_store(&withings.uri());
    let env_file = env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));
    let before = std::fs::read(&env_file).unwrap();

    let out = env.run_fast(&["refresh", "--output-env"]);

    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(out.stdout, "", "no env line at all");
    assert!(out.stderr.contains("[ENV_FILE_UPDATE_FAILED]"), "{out:?}");
    assert!(out.stderr.contains("[OUTPUT_FAILED]"), "{out:?}");
    assert!(out.stderr.contains("WITHINGS_REFRESH_TOKEN"), "names the key: {out:?}");
    assert!(!out.stderr.contains("stolen"), "{out:?}");
    assert_eq!(std::fs::read(&env_file).unwrap(), before, "the env file is untouched");
    assert_eq!(env.stored_refresh_token(), hostile, "the store keeps it, JSON-escaped");
}

#[test]
fn under_github_actions_tokens_are_masked_on_stderr_and_stdout_keeps_the_four_lines() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let mut env = given_expired_store(&withings.uri());
    env.set("GITHUB_ACTIONS", "true");

    let out = env.run_fast(&["refresh", "--output-env", "--no-env-file"]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 4, "{out:?}");
    assert!(out.stdout.starts_with(&format!(
        "WITHINGS_ACCESS_TOKEN={NEW_ACCESS}\nWITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n"
    )));
    assert!(out.stderr.contains(&format!("::add-mask::{NEW_ACCESS}\n")), "{out:?}");
    assert!(out.stderr.contains(&format!("::add-mask::{NEW_REFRESH}\n")), "{out:?}");
    // Without GITHUB_ACTIONS there is no mask line.
    let out = given_store_expiring_in(3600).run(&["export"]);
    assert!(!out.stderr.contains("::add-mask::"), "{out:?}");
}

// ---------------------------------------------------------------------------
// --quiet, -vv and the words of a report

#[test]
fn quiet_prints_nothing_on_success_unless_a_format_was_asked_for() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());

    let out = env.run_fast(&["refresh", "--quiet"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", ""),
        "{out:?}"
    );

    let out = env.run(&["status", "--quiet", "--output-env"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 4, "{out:?}");
    assert!(
        out.stdout.contains(&format!("WITHINGS_REFRESH_TOKEN={NEW_REFRESH}\n")),
        "{out:?}"
    );
}

#[test]
fn very_verbose_shows_the_decision_and_the_token_source() {
    let withings = silent_withings();
    let mut env = given_store_expiring_in(3 * 3600);
    env.withings(&withings.uri());
    let out = env.run(&["refresh", "--if-needed", "--no-env-file", "-vv"]);
    assert_eq!(out.code, 0, "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("debug: decision: not due until "))
        .unwrap_or_else(|| panic!("no decision line: {out:?}"));
    assert!(line.contains("token source: Store; buffer: Some(60) min"), "{line}");
}

#[test]
fn a_refresh_says_why_the_env_file_and_railway_were_not_updated() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(3);
    let env = given_expired_store(&withings.uri());
    env.write_env_file(&format!("WITHINGS_REFRESH_TOKEN={OLD_REFRESH}\n"));

    let declined = env.run_fast(&["refresh", "--no-env-file-update"]);
    assert_eq!(declined.code, 0, "{declined:?}");
    assert!(
        declined
            .stdout
            .contains("│ env file       ┆ not updated: skipped by --no-env-file-update"),
        "{}",
        declined.stdout
    );
    assert!(
        declined
            .stdout
            .contains("│ railway        ┆ skipped: Railway is not configured"),
        "{}",
        declined.stdout
    );
    let none = env.run_fast(&["refresh", "--no-env-file", "--json"]);
    assert_eq!(none.code, 0, "{none:?}");
    let report = none.json();
    assert_eq!(report["env_file"], "skipped");
    assert_eq!(
        report["env_file_reason"],
        "no env file was read (none given, no ./.env, or --no-env-file)"
    );
    assert_eq!(report["railway_reason"], "Railway is not configured");
    env.write_env_file("APP=1\n");
    let no_keys = env.run_fast(&["refresh", "--json"]);
    assert_eq!(
        no_keys.json()["env_file_reason"],
        "the env file read holds no WITHINGS_* token keys"
    );
    withings.verify();
}

// ---------------------------------------------------------------------------
// a stdout that cannot be written

/// Runs `cmd` with stdout going to `stdout` (stderr captured).
fn run_with_stdout(mut cmd: StdCommand, stdout: impl Into<Stdio>) -> Output {
    cmd.stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run withings-token")
}

#[test]
fn a_full_disk_behind_output_env_is_output_failed_and_the_new_set_is_safe_in_the_store() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    let mut cmd = env.std_cmd();
    cmd.args(["refresh", "--output-env", "--no-env-file"]).args(FAST);

    let out = run_with_stdout(cmd, File::options().write(true).open("/dev/full").expect("/dev/full"));

    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("error: the output could not be written: stdout: No space left on device"),
        "{stderr}"
    );
    assert!(stderr.contains("[OUTPUT_FAILED]"), "{stderr}");
    assert!(
        stderr.contains("the new set is saved in ") && stderr.contains("(set generation 2)"),
        "the message says where the set is: {stderr}"
    );
    assert!(stderr.contains("`withings-token export`"), "{stderr}");
    assert_eq!(env.stored_refresh_token(), NEW_REFRESH);
    assert!(!stderr.contains(NEW_REFRESH), "{stderr}");
}

#[test]
fn a_closed_pipe_is_output_failed_never_a_panic() {
    let withings = withings_answering(new_tokens(NEW_ACCESS, NEW_REFRESH)).times(1);
    let env = given_expired_store(&withings.uri());
    for args in [
        &["refresh"][..],
        &["status"],
        &["status", "--json"],
        &["completions", "bash"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let mut cmd = env.std_cmd();
        cmd.args(args).args(FAST);
        let out = run_with_stdout(cmd, writer);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(6), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Broken pipe") && stderr.contains("[OUTPUT_FAILED]"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(
        env.stored_refresh_token(),
        NEW_REFRESH,
        "the refresh saved its set first"
    );
}
